// The pub/sub mode is the namespace's (dps:{ns}:config): the first node decides it, every node follows it, and a switch while nodes run loses nothing.
import { execFile } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { httpPublish, startTestRedis, startTestServer, type TestRedis, type TestServer, until } from '../support/env';
import { RawClient } from '../support/raw-client';

const BIN = new URL('../../server/bin/durable-pubsub.mjs', import.meta.url).pathname;

let redis: TestRedis;
let servers: TestServer[] = [];
const raw: Redis[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
}, 60_000);
afterEach(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  servers = [];
  for (const r of raw.splice(0)) r.disconnect();
});
afterAll(async () => {
  await redis?.cleanup();
});

/** Runs the CLI against the test Redis (async: the servers under test share this event loop). */
function dps(args: string[], ns: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, REDIS_URL: redis.url, DPS_NAMESPACE: ns }, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const stored = (ns: string) => redis.client.hget(`dps:{${ns}}:config`, 'pubsub');
const pubsub = (...args: string[]) => redis.client.call('PUBSUB', ...args);

/** Publishes one message after another until stopped; `send` answers the id. */
function publisher(send: (n: number) => Promise<number>) {
  const ids: number[] = [];
  let stopped = false;
  const done = (async () => {
    for (let n = 0; !stopped; n++) ids.push(await send(n));
  })();
  return {
    ids,
    async stop(): Promise<number[]> {
      stopped = true;
      await done;
      return ids;
    },
  };
}

async function client(server: TestServer, recipient: string, subs: string[]): Promise<RawClient> {
  const c = await RawClient.connect(server.wsUrl);
  await c.hello({ recipient, subs });
  await c.next('live');
  return c;
}

describe("the namespace's pub/sub mode", () => {
  it('the first node chooses classic while a classic subscriber or an older node is visible, sharded when none is; a stored mode is followed whatever the env', async () => {
    // An older node's bridge: PSUBSCRIBE of its patterns (narrow) or of the whole live stream (wide).
    const older = new Redis(redis.url, { protocol: 2 });
    raw.push(older);
    await older.psubscribe('dps:{old}:live:*');
    servers = [await startTestServer(redis.url, { DPS_NAMESPACE: 'old' })];
    expect(await stored('old')).toBe('classic');
    expect(servers[0]?.bridge.mode).toBe('classic');
    expect(await pubsub('NUMSUB', 'dps:{old}:pubsub-mode')).toEqual(['dps:{old}:pubsub-mode', 1]);
    await Promise.all(servers.map((s) => s.stop()));
    await older.punsubscribe();
    await until(async () => Number(await pubsub('NUMPAT')) === 0, 5000, 'no pattern left');

    // An idle older node: no client, so no pattern, but its subscriber connection (named as the older versions name it).
    const idle = new Redis(redis.url, { protocol: 2, connectionName: 'dps-subscriber' });
    raw.push(idle);
    await idle.ping();
    servers = [await startTestServer(redis.url, { DPS_NAMESPACE: 'idle' })];
    expect([await stored('idle'), servers[0]?.bridge.mode]).toEqual(['classic', 'classic']);
    // Nor does the CLI switch to sharded while it is connected.
    const refused = await dps(['pubsub-mode', 'sharded'], 'idle');
    expect([refused.code, /1 subscriber connection\(s\) of a version without pub\/sub modes/.test(refused.stderr)]).toEqual([1, true]);
    expect(await stored('idle')).toBe('classic');
    await Promise.all(servers.map((s) => s.stop()));
    idle.disconnect();
    await until(async () => !((await redis.client.call('CLIENT', 'LIST')) as string).includes(' name=dps-subscriber '), 5000, 'it gone');

    // None visible, Redis >= 7: sharded; a second node with DPS_SHARDED_PUBSUB=off follows the stored mode.
    servers = [await startTestServer(redis.url, { DPS_NAMESPACE: 'fresh' })];
    servers.push(await startTestServer(redis.url, { DPS_NAMESPACE: 'fresh', DPS_SHARDED_PUBSUB: 'off' }));
    expect(await stored('fresh')).toBe('sharded');
    expect(servers.map((s) => s.bridge.mode)).toEqual(['sharded', 'sharded']);
    // A node reads the shard channel while it has readers only (one with none, say one that only publishes, does not).
    expect(await pubsub('SHARDNUMSUB', 'dps:{fresh}:live')).toEqual(['dps:{fresh}:live', 0]);
    const readers = await Promise.all(servers.map((s, i) => client(s, `fresh-${i}`, ['f.*'])));
    expect(await pubsub('SHARDNUMSUB', 'dps:{fresh}:live')).toEqual(['dps:{fresh}:live', 2]);
    for (const r of readers) r.close();
    await until(async () => ((await pubsub('SHARDNUMSUB', 'dps:{fresh}:live')) as [string, number])[1] === 0, 5000, 'no reader left');

    // DPS_SHARDED_PUBSUB=off on a namespace without a mode: classic, and an auto node follows it.
    servers.push(await startTestServer(redis.url, { DPS_NAMESPACE: 'off', DPS_SHARDED_PUBSUB: 'off' }));
    servers.push(await startTestServer(redis.url, { DPS_NAMESPACE: 'off' }));
    expect(await stored('off')).toBe('classic');
    expect(servers.slice(2).map((s) => s.bridge.mode)).toEqual(['classic', 'classic']);
    expect(await pubsub('NUMSUB', 'dps:{off}:pubsub-mode')).toEqual(['dps:{off}:pubsub-mode', 2]);

    // The CLI prints the stored mode (none for a namespace that has none yet: it publishes both ways).
    expect((await dps(['pubsub-mode'], 'fresh')).stdout).toBe('sharded\n');
    expect((await dps(['pubsub-mode'], 'none')).stdout).toBe('none\n');
    expect(await stored('none')).toBeNull();
    expect((await dps(['pubsub-mode', 'loud'], 'none')).code).toBe(2);
  });

  it('two nodes with clients and publishers on both: switched to sharded then back to classic mid-stream, every client gets every id once, in order', async () => {
    const ns = 'sw';
    // Classic first (as after a rolling upgrade); no polling: only the switch's marker moves the nodes.
    const env = { DPS_NAMESPACE: ns, DPS_PUBSUB_MODE_POLL: '600000' };
    servers = [await startTestServer(redis.url, { ...env, DPS_SHARDED_PUBSUB: 'off' })];
    servers.push(await startTestServer(redis.url, env));
    const [a, b] = servers as [TestServer, TestServer];
    expect([a.bridge.mode, b.bridge.mode]).toEqual(['classic', 'classic']);
    const clients = [
      await client(a, 'all-a', ['sw.*']),
      await client(b, 'all-b', ['sw.*']),
      await client(a, 'x-a', ['sw.x']),
      await client(b, 'y-b', ['sw.y', 'sw.[y]']),
    ];
    const fcall = new Redis(redis.url, { protocol: 2 });
    raw.push(fcall);
    const pubs = [
      publisher(async (n) => (await httpPublish(a, { ch: 'sw.x', data: n })).body.id),
      publisher(async (n) => (await httpPublish(b, { ch: 'sw.y', data: n })).body.id),
      // Any Redis client, no server: FCALL dps_publish reads the mode as the server's script does.
      publisher(async (n) => ((await fcall.call('FCALL', 'dps_publish', '1', `dps:{${ns}}`, 'sw.z', String(n))) as [number])[0]),
    ];
    const total = () => pubs.reduce((s, p) => s + p.ids.length, 0);
    const atLeast = (n: number) => until(() => total() >= n, 20_000, `${n} publishes`);

    await atLeast(150);
    const toSharded = await dps(['pubsub-mode', 'sharded'], ns);
    expect([toSharded.code, toSharded.stdout]).toEqual([0, 'sharded\n']);
    await until(() => a.bridge.mode === 'sharded' && b.bridge.mode === 'sharded' && a.bridge.state === 'up' && b.bridge.state === 'up');
    expect(await pubsub('SHARDNUMSUB', `dps:{${ns}}:live`)).toEqual([`dps:{${ns}}:live`, 2]);
    expect(Number(await pubsub('NUMPAT'))).toBe(0);
    await atLeast(total() + 150);
    const toClassic = await dps(['pubsub-mode', 'classic'], ns);
    expect([toClassic.code, toClassic.stdout]).toEqual([0, 'classic\n']);
    await until(() => a.bridge.mode === 'classic' && b.bridge.mode === 'classic' && a.bridge.state === 'up' && b.bridge.state === 'up');
    expect(await pubsub('SHARDNUMSUB', `dps:{${ns}}:live`)).toEqual([`dps:{${ns}}:live`, 0]);
    await atLeast(total() + 150);

    const [x, y, z] = (await Promise.all(pubs.map((p) => p.stop()))) as [number[], number[], number[]];
    const all = [...x, ...y, ...z].sort((p, q) => p - q);
    const last = all[all.length - 1] as number;
    const want = [all, all, x, y];
    for (const [i, c] of clients.entries()) {
      const end = (want[i] as number[])[(want[i] as number[]).length - 1];
      await c.waitFor((f) => f.id === end, 20_000, `id ${end} on client ${i}`);
    }
    // One more after the last: nothing else was on its way.
    const tail = (await httpPublish(a, { ch: 'sw.x', data: 'end' })).body.id as number;
    await clients[0]?.waitFor((f) => f.id === tail);
    expect(tail).toBeGreaterThan(last);
    for (const [i, c] of clients.entries())
      expect(c.msgIds()).toEqual(i === 0 || i === 1 || i === 2 ? [...(want[i] as number[]), tail] : want[i]);
    for (const c of clients) c.close();
  });

  it('a node that missed the marker (the mode changed without one) follows at its next read, and its clients miss nothing', async () => {
    const ns = 'poll';
    servers = [await startTestServer(redis.url, { DPS_NAMESPACE: ns, DPS_SHARDED_PUBSUB: 'off', DPS_PUBSUB_MODE_POLL: '200' })];
    const [s] = servers as [TestServer];
    const c = await client(s, 'poller', ['p.*']);
    const pub = publisher(async (n) => (await httpPublish(s, { ch: 'p.a', data: n })).body.id);
    await until(() => pub.ids.length >= 50);
    // As a subscription that dropped the marker would see it: the scripts publish sharded, the node listens classic.
    await redis.client.hset(`dps:{${ns}}:config`, 'pubsub', 'sharded');
    await until(() => s.bridge.mode === 'sharded' && s.bridge.state === 'up', 10_000, 'the node to follow');
    const n = pub.ids.length;
    await until(() => pub.ids.length >= n + 50);
    const ids = await pub.stop();
    await c.waitFor((f) => f.id === ids[ids.length - 1], 20_000, 'the last id');
    expect(c.msgIds()).toEqual(ids);
    c.close();
  });

  it('a namespace whose mode was lost (its config gone with data) publishes both ways until a node decides again: clients miss nothing', async () => {
    const ns = 'lost';
    servers = [await startTestServer(redis.url, { DPS_NAMESPACE: ns, DPS_PUBSUB_MODE_POLL: '1000' })];
    const [s] = servers as [TestServer];
    expect(s.bridge.mode).toBe('sharded');
    const c = await client(s, 'lost', ['l.*']);
    const ids: number[] = [];
    for (let n = 0; n < 10; n++) ids.push((await httpPublish(s, { ch: 'l.a', data: n })).body.id);
    await redis.client.hdel(`dps:{${ns}}:config`, 'pubsub');
    // Until the node's next read decides again, the scripts publish classic and sharded; a FCALL too.
    for (let n = 0; n < 10; n++) {
      ids.push((await httpPublish(s, { ch: 'l.a', data: n })).body.id);
      ids.push(((await redis.client.call('FCALL', 'dps_publish', '1', `dps:{${ns}}`, 'l.b', String(n))) as [number])[0]);
    }
    await until(async () => (await stored(ns)) === 'sharded', 10_000, 'the mode decided again');
    for (let n = 0; n < 10; n++) ids.push((await httpPublish(s, { ch: 'l.a', data: n })).body.id);
    await c.waitFor((f) => f.id === ids[ids.length - 1], 10_000, 'the last id');
    expect(c.msgIds()).toEqual(ids);
    expect(s.bridge.mode).toBe('sharded');
    c.close();
  });
});
