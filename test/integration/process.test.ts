// The server as an operator runs it: managed redis-server child with AOF, clean SIGTERM, a clear message without redis-server.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@durable-pubsub/server';
import { afterAll, describe, expect, it } from 'vitest';
import { httpPublish, processAlive, until } from '../support/env';
import { RawClient } from '../support/raw-client';

const TSX_CLI = new URL('../../node_modules/tsx/dist/cli.mjs', import.meta.url).pathname;
const MAIN = new URL('../../server/src/main.ts', import.meta.url).pathname;
const dirs: string[] = [];
const groups: number[] = [];

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'dps-proc-'));
  dirs.push(d);
  return d;
}

function runServer(env: Record<string, string>): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  // Its own process group, so that a failed test can stop all of it: tsx, the server (its workers) and its redis-server.
  const child = spawn(process.execPath, [TSX_CLI, MAIN], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  groups.push(child.pid as number);
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exit };
}

const alive = processAlive;

afterAll(() => {
  for (const g of groups)
    try {
      process.kill(-g, 'SIGKILL');
    } catch {} // ended, as it should have
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('the server process', () => {
  // One process, and a primary with two workers (which starts the one redis-server and stops it after them).
  it.each(['1', '2'])(
    'with REDIS_URL unset owns a redis-server with an append-only file in DPS_DATA_DIR, and stops it on SIGTERM (DPS_WORKERS=%s)',
    async (workers) => {
      const dataDir = tmp();
      const port = await freePort();
      // everysec: a crash could lose the last second, so only the clean-shutdown mark keeps the epoch below. No janitor
      // pass: proc-first's position (the head at its hello) acks the message, so a pass would trim it before the reader
      // comes (with two workers, the first one's janitor runs while the second starts).
      const env = {
        PORT: String(port),
        DPS_DATA_DIR: dataDir,
        REDIS_URL: '',
        DPS_REDIS_FSYNC: 'everysec',
        DPS_WORKERS: workers,
        DPS_JANITOR_INTERVAL: '600000',
      };
      const s = runServer(env);
      const base = { url: `http://127.0.0.1:${port}` };
      await until(() => s.output().includes('durable-pubsub is listening'), 20_000, 'the server to listen');
      const r = await httpPublish(base, { ch: 'proc', data: 'kept' });
      expect(r).toEqual({ status: 200, body: { id: 1 } });
      const pid = Number(readFileSync(join(dataDir, 'redis.pid'), 'utf8'));
      expect(alive(pid)).toBe(true);
      expect(readdirSync(join(dataDir, 'appendonlydir')).some((f) => f.endsWith('.incr.aof'))).toBe(true);

      const first = await RawClient.connect(`ws://127.0.0.1:${port}/ws`);
      await first.hello({ recipient: 'proc-first', subs: ['proc'] });
      const { epoch } = await first.next('welcome');
      first.close();
      s.child.kill('SIGTERM');
      expect(await s.exit).toBe(0);
      await until(() => !alive(pid), 5000, 'redis-server to stop');

      // The log survives the restart: same epoch, the message is replayable.
      const again = runServer(env);
      await until(() => again.output().includes('durable-pubsub is listening'), 20_000, 'the server to listen again');
      const c = await RawClient.connect(`ws://127.0.0.1:${port}/ws`);
      await c.hello({ recipient: 'proc-reader', subs: ['proc'], from: 'earliest' });
      expect((await c.next('welcome')).epoch).toBe(epoch);
      await c.next('live');
      expect(c.frames.filter((f) => f.op === 'msg').map((f) => [f.id, f.data])).toEqual([[1, 'kept']]);
      c.close();
      again.child.kill('SIGINT');
      expect(await again.exit).toBe(0);
    },
  );

  it('exits with a one-line message when there is no redis-server binary and no REDIS_URL', async () => {
    const bin = tmp();
    symlinkSync(process.execPath, join(bin, 'node'));
    const s = runServer({ PATH: bin, PORT: '0', DPS_DATA_DIR: tmp(), REDIS_URL: '' });
    expect(await s.exit).toBe(1);
    expect(s.output().trim().split('\n')).toEqual([
      'durable-pubsub: redis-server not found: install it (Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis) or set REDIS_URL=redis://host:port',
    ]);
  });

  it('exits with status 2 and names the variable on bad configuration', async () => {
    const s = runServer({ PORT: 'eighty', REDIS_URL: 'redis://127.0.0.1:1' });
    expect(await s.exit).toBe(2);
    expect(s.output().trim()).toBe('durable-pubsub: PORT must be an integer >= 0, got "eighty"');
  });
});
