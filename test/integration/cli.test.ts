// The durable-pubsub CLI against a real server and Redis: output, resuming tail, trim, legacy import, exit codes.
import { execFile, spawn } from 'node:child_process';
import { freePort } from '@durable-pubsub/server';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { httpPublish, startTestServer, until, withServer } from '../support/env';
import { RawClient } from '../support/raw-client';

const ctx = withServer();
const BIN = new URL('../../server/bin/durable-pubsub.mjs', import.meta.url).pathname;

/** Runs the CLI (async: the server under test shares this event loop). */
function dps(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, DPS_URL: ctx.server.url, ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

describe('durable-pubsub CLI', () => {
  it('answers --help on every command, and exits 2 on usage errors', async () => {
    const top = await dps(['--help']);
    expect([top.code, top.stdout.split('\n')[0]]).toEqual([0, 'usage: durable-pubsub <command> [options]']);
    for (const c of ['serve', 'publish', 'tail', 'recipients', 'channels', 'trim', 'import-legacy', 'pubsub-mode']) {
      const r = await dps([c, '--help']);
      expect([c, r.code, r.stdout.startsWith(`usage: durable-pubsub ${c}`)]).toEqual([c, 0, true]);
    }
    expect((await dps(['nope'])).code).toBe(2);
    expect((await dps(['publish', 'only-a-channel'])).code).toBe(2);
    const bad = await dps(['publish', 'c', '{not json']);
    expect([bad.code, bad.stderr.trim()]).toEqual([2, 'durable-pubsub: <json> is not valid JSON: {not json']);
    expect((await dps(['trim'], { REDIS_URL: '' })).code).toBe(2);
    const workers = await dps(['serve', '--workers', '0']);
    expect([workers.code, workers.stderr]).toEqual([2, 'durable-pubsub: --workers must be a positive integer\n']);
  });

  it('serve runs the server in the foreground until SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [BIN, 'serve'], {
      env: { ...process.env, PORT: String(port), REDIS_URL: ctx.redis.url, DPS_NAMESPACE: 'cli-serve' },
      stdio: 'ignore',
    });
    await until(
      () =>
        fetch(`http://127.0.0.1:${port}/readyz`).then(
          (r) => r.ok,
          () => false,
        ),
      20_000,
      'serve to be ready',
    );
    const exited = new Promise((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('publishes, with idempotency keys, and exits 1 when the server cannot be reached', async () => {
    const a = await dps(['publish', 'cli.a', '{"n":1}']);
    const b = await dps(['publish', 'cli.a', '{"n":2}', '--key', 'k-1']);
    const c = await dps(['publish', 'cli.a', '{"n":2}', '--key', 'k-1']);
    expect([a.stdout, b.stdout, c.stdout]).toEqual(['1\n', '2\n', '2 dup\n']);
    const down = await dps(['publish', 'x', '1', '--url', 'http://127.0.0.1:1']);
    expect([down.code, down.stderr]).toEqual([
      1,
      'durable-pubsub: cannot reach the server at http://127.0.0.1:1 (is it running? set --url or DPS_URL)\n',
    ]);
  });

  it('sends --token (or DPS_TOKEN) to a server with auth on: publish, tail and the admin lists', async () => {
    const secret = 'cli-secret-that-is-long-enough-0123456789';
    const secured = await startTestServer(ctx.redis.url, { DPS_JWT_SECRET: secret, DPS_NAMESPACE: 'cli-auth' });
    try {
      const mint = (subject: string, dps: { sub: string[]; pub: string[]; admin: boolean }) =>
        new SignJWT({ dps })
          .setProtectedHeader({ alg: 'HS256' })
          .setSubject(subject)
          .setExpirationTime('1h')
          .sign(new TextEncoder().encode(secret));
      const env = { DPS_URL: secured.url };
      const refused = await dps(['publish', 'cli.x', '1'], env);
      const published = await dps(['publish', 'cli.x', '7', '--token', await mint('ops', { sub: [], pub: ['cli.*'], admin: false })], env);
      const reader = await mint('cli-reader', { sub: ['cli.*'], pub: [], admin: false });
      const tailed = await dps(['tail', 'cli.*', '--recipient', 'cli-reader', '--from', 'earliest', '--count', '1'], {
        ...env,
        DPS_TOKEN: reader,
      });
      const admin = { ...env, DPS_TOKEN: await mint('root', { sub: [], pub: [], admin: true }) };
      const channels = await dps(['channels', '--json'], admin);
      expect([
        refused.code,
        refused.stderr.split(':').slice(0, 2).join(':'),
        published.stdout,
        JSON.parse(tailed.stdout).data,
        channels.code,
        channels.stdout.includes('"cli.x"'),
      ]).toEqual([1, 'durable-pubsub: 401 unauthorized', '1\n', 7, 0, true]);
    } finally {
      await secured.stop();
    }
  });

  it('tails as JSON lines and resumes a named recipient where it stopped', async () => {
    const ids = (
      await httpPublish(ctx.server, {
        messages: [
          { ch: 'tail.a', data: 'one' },
          { ch: 'tail.b', data: 'two' },
          { ch: 'other', data: 'x' },
          { ch: 'tail.a', data: 'three' },
        ],
      })
    ).body.ids;
    const first = await dps(['tail', 'tail.*', '--recipient', 'cli-tail', '--from', 'earliest', '--count', '2']);
    const lines = first.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.id, l.ch, l.data])).toEqual([
      [ids[0], 'tail.a', 'one'],
      [ids[1], 'tail.b', 'two'],
    ]);
    expect(typeof lines[0].ts).toBe('number');
    const second = await dps(['tail', 'tail.*', '--recipient', 'cli-tail', '--count', '1']);
    expect(JSON.parse(second.stdout).id).toBe(ids[3]);
  });

  it('lists recipients and channels as tables or JSON', async () => {
    const channels = JSON.parse((await dps(['channels', '--json'])).stdout);
    expect(channels).toEqual([
      { channel: 'cli.a', newestId: 2, stored: 2 },
      { channel: 'tail.b', newestId: 4, stored: 1 },
      { channel: 'other', newestId: 5, stored: 1 },
      { channel: 'tail.a', newestId: 6, stored: 2 },
    ]);
    const table = (await dps(['channels'])).stdout.split('\n');
    expect(table[0]?.split(/\s+/).filter(Boolean)).toEqual(['channel', 'newestId', 'stored']);
    const recipients = JSON.parse((await dps(['recipients', '--json'])).stdout);
    expect(recipients.find((r: { name: string }) => r.name === 'cli-tail')).toMatchObject({ lastAckedId: 6, lag: 0, patterns: ['tail.*'] });
  });

  it('trim --dry-run reports what would go and removes nothing; trim removes it', async () => {
    const c = await RawClient.connect(ctx.server.wsUrl);
    await c.hello({ recipient: 'cli-trimmer', subs: ['trim.x'] });
    await c.next('live');
    const ids = (await httpPublish(ctx.server, { messages: [1, 2, 3, 4].map((n) => ({ ch: 'trim.x', data: n })) })).body.ids;
    await c.waitFor((f) => f.id === ids[3]);
    c.send({ op: 'ack', id: ids[3] });
    c.close();
    await c.closed();
    const env = { REDIS_URL: ctx.redis.url };
    const count = () => ctx.redis.client.zcard('dps:{default}:ch:trim.x');
    const dry = await dps(['trim', '--dry-run'], env);
    expect(dry.code).toBe(0);
    expect(
      dry.stdout
        .split('\n')
        .find((l) => l.startsWith('trim.x'))
        ?.split(/\s+/),
    ).toEqual(['trim.x', '4', '4', '0']);
    expect(await count()).toBe(4);
    const real = await dps(['trim'], env);
    expect([real.code, await count()]).toEqual([0, 0]);
  });

  it('imports a log written the original blog design’s way, once, with recipient positions', async () => {
    const r = ctx.redis.client;
    await r.zadd('MESSAGES', 10, '{"text":"a"}', 20, 'plain b', 30, '{"text":"c"}');
    await r.zadd('PROC_STATS', 20, 'legacy-worker');
    const env = { REDIS_URL: ctx.redis.url };
    const first = await dps(['import-legacy', '--channel', 'legacy.news'], env);
    expect([first.code, first.stdout, first.stderr]).toEqual([
      0,
      'imported 3 messages into channel "legacy.news" (0 already there) and 1 recipients\n',
      'imported 3/3 messages\n',
    ]);
    const again = await dps(['import-legacy', '--channel', 'legacy.news'], env);
    expect(again.stdout).toBe('imported 3 messages into channel "legacy.news" (3 already there) and 1 recipients\n');

    const worker = await RawClient.connect(ctx.server.wsUrl);
    await worker.hello({ recipient: 'legacy-worker', subs: ['legacy.news'] });
    await worker.next('live');
    expect(worker.frames.filter((f) => f.op === 'msg').map((f) => f.data)).toEqual([{ text: 'c' }]);
    const fresh = await RawClient.connect(ctx.server.wsUrl);
    await fresh.hello({ recipient: 'legacy-reader', subs: ['legacy.*'], from: 'earliest' });
    await fresh.next('live');
    expect(fresh.frames.filter((f) => f.op === 'msg').map((f) => f.data)).toEqual([{ text: 'a' }, 'plain b', { text: 'c' }]);
    worker.close();
    fresh.close();
  });
});
