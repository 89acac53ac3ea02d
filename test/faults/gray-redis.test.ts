// Gray failures of Redis, injected for real (a TCP proxy between the server and Redis, maxmemory, a data dir that vanished):
// a silent subscriber or command connection, a slow Redis, Redis refusing writes. Exact accounting: nothing lost, nothing
// twice, publishes answered within DPS_REDIS_TIMEOUT and never stored after an error.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedis } from '@durable-pubsub/server';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { httpPublish, sleep, startTestRedis, startTestServer, type TestRedis, type TestServer, until } from '../support/env';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';
import { RawClient } from '../support/raw-client';
import { allLive, mergeFailures, type Recorder, record, steadyPublisher } from '../support/recorder';

const TIMEOUT = 2000;
const ENV = { DPS_REDIS_TIMEOUT: String(TIMEOUT), DPS_HEARTBEAT_INTERVAL: '1500' };
const PATTERNS: [string, string[]][] = [
  ['gray-all', ['gr.*']],
  ['gray-a', ['gr.a']],
  ['gray-b', ['gr.b', 'other.*']],
];

let redis: TestRedis | undefined;
let proxy: FaultProxy | undefined;
let server: TestServer | undefined;
let clients: Recorder[] = [];
afterEach(async () => {
  for (const c of clients) c.client.close();
  clients = [];
  await server?.stop();
  await proxy?.close();
  await redis?.cleanup();
  server = proxy = redis = undefined;
});

async function setUp(): Promise<{ redis: TestRedis; proxy: FaultProxy; server: TestServer }> {
  redis = await startTestRedis();
  proxy = await startFaultProxy({ port: redis.port });
  server = await startTestServer(proxy.url(), ENV);
  clients = PATTERNS.map(([name, patterns]) => record((server as TestServer).wsUrl, name, patterns));
  await allLive(clients);
  return { redis, proxy, server };
}

/** The local port of the server's connection named `name` (dps-command, dps-live), as Redis sees it: the proxy's upstream side. */
async function portOf(r: TestRedis, name: string): Promise<number> {
  const list = (await r.client.call('CLIENT', 'LIST')) as string;
  const line = list.split('\n').find((l) => l.includes(` name=${name} `));
  return Number(/ addr=[\d.]+:(\d+) /.exec(line ?? '')?.[1]);
}

const ready = async (s: TestServer) => (await fetch(`${s.url}/readyz`)).status;

/** Every client got exactly the published ids on its channels, in order, once. */
async function expectExact(published: [number, string][]): Promise<void> {
  for (const [i, [name, patterns]] of PATTERNS.entries()) {
    const c = clients[i] as Recorder;
    const want = published
      .filter(([, ch]) => patterns.some((p) => (p.endsWith('*') ? ch.startsWith(p.slice(0, -1)) : ch === p)))
      .map(([id]) => id)
      .sort((a, b) => a - b);
    await until(() => c.seen.length >= want.length, 20_000, `${name} to catch up`);
    await sleep(100);
    expect([name, c.seen]).toEqual([name, want]);
  }
}

describe('gray failures of Redis', () => {
  it('a subscriber connection that goes silent is replaced within the timeout; live delivery resumes and nothing is lost', async () => {
    const { redis: r, proxy: p, server: s } = await setUp();
    const pub = steadyPublisher(s.url, 'g1', ['gr.a', 'gr.b'], 5);
    await sleep(500);
    for (const c of clients) c.quietFrom();
    const subPort = await portOf(r, 'dps-live');
    const silentAt = performance.now();
    p.silent({ discard: true, where: (port) => port === subPort });
    await until(async () => (await ready(s)) === 503, TIMEOUT * 2, '/readyz to say 503');
    const noticedMs = performance.now() - silentAt;
    await until(async () => (await ready(s)) === 200, TIMEOUT * 3, '/readyz to say 200 again');
    const backMs = performance.now() - silentAt;
    await sleep(1000);
    const result = await pub.stop();
    await expectExact(result.published);
    const quiet = Math.max(...clients.map((c) => c.longestQuietMs));
    console.log(
      `silent subscriber: /readyz 503 after ${Math.round(noticedMs)} ms, 200 again after ${Math.round(backMs)} ms; ` +
        `${result.published.length} publishes all delivered; longest time without a message at a client ${Math.round(quiet)} ms`,
    );
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(/^dps_redis_silent_total (\d+)/m.exec(metrics)?.[1]).toBe('1');
    expect(result.failures).toEqual({}); // publishing never needed the subscriber
  });

  it('a command connection that goes silent: a publish is answered within the timeout, and never stored after its 503', async () => {
    const { redis: r, proxy: p, server: s } = await setUp();
    const cmdPort = await portOf(r, 'dps-command');
    const statuses = new Set<number>();
    const watching = setInterval(() => void ready(s).then((st) => statuses.add(st)), 20);
    // Held, not dropped: when the network comes back, the stalled bytes reach Redis late.
    p.silent({ where: (port) => port === cmdPort });
    const t0 = performance.now();
    const late = await httpPublish(s, { ch: 'gr.a', data: { late: true }, key: 'late-1' });
    const answeredMs = performance.now() - t0;
    expect([late.status, late.body.error?.code]).toEqual([503, 'unavailable']);
    expect(answeredMs).toBeLessThan(TIMEOUT + 1000);
    await until(async () => (await ready(s)) === 200, TIMEOUT * 3, 'a new command connection');
    clearInterval(watching);
    expect([...statuses].sort()).toEqual([200, 503]); // /readyz said so while it lasted
    const heldBytes = p.buffered;
    p.pass(); // the held publish reaches Redis now, past its deadline
    await sleep(500);
    expect(heldBytes).toBeGreaterThan(0);
    const stored = (await r.client.zrange('dps:{default}:ch:gr.a', '0', '-1')).map((f) => JSON.parse(f).data);
    expect(stored).toEqual([]);
    expect(await r.client.get('dps:{default}:idem:late-1')).toBe(null);
    // The retry with the same key stores it once, and everyone gets it.
    const retry = await httpPublish(s, { ch: 'gr.a', data: { late: true }, key: 'late-1' });
    expect(retry.status).toBe(200);
    await expectExact([[retry.body.id, 'gr.a']]);
    console.log(
      `silent command connection: publish answered 503 after ${Math.round(answeredMs)} ms; the held call reached Redis late and stored nothing`,
    );
  });

  it('a slow Redis (200 ms each way) loses nothing and duplicates nothing, with clients joining and reconnecting meanwhile', async () => {
    const { proxy: p, server: s } = await setUp();
    p.latency(200);
    const pubs = [0, 1, 2, 3].map((i) => steadyPublisher(s.url, `g3-${i}`, ['gr.a', 'gr.b'], 0));
    await sleep(1000);
    const late = record(s.wsUrl, 'gray-late', ['gr.*'], { from: 'earliest' });
    await allLive([late]);
    // A client's socket dies under it mid-stream; it reconnects and resumes.
    const victim = [...s.sessions].find((x) => x.recipient === 'gray-a');
    victim?.close(1001, 'test: reconnect');
    await sleep(1500);
    const results = await Promise.all(pubs.map((pub) => pub.stop()));
    const result = { published: results.flatMap((r) => r.published), failures: mergeFailures(results) };
    p.pass();
    await expectExact(result.published);
    const want = result.published.map(([id]) => id).sort((a, b) => a - b);
    await until(() => late.seen.length >= want.length, 10_000, 'the late client');
    expect(late.seen).toEqual(want);
    late.client.close();
    console.log(`slow Redis: ${result.published.length} publishes, refused ${JSON.stringify(result.failures)}, delivered exactly`);
  });

  it('Redis out of memory (maxmemory, noeviction): publishes are refused with a clear 503; live, replay and new connections keep working', async () => {
    const { redis: r, server: s } = await setUp();
    const before = await httpPublish(s, { ch: 'gr.a', data: 'before' });
    const watcher = await RawClient.connect(s.wsUrl);
    await watcher.hello({ recipient: 'oom-watcher', subs: ['gr.*'] });
    await watcher.next('live');
    await r.client.config('SET', 'maxmemory-policy', 'noeviction');
    await r.client.config('SET', 'maxmemory', '1');
    const refused = await httpPublish(s, { ch: 'gr.a', data: 'refused' });
    expect([refused.status, refused.body.error.code, refused.body.error.message]).toEqual([
      503,
      'unavailable',
      expect.stringMatching(/out of memory/),
    ]);
    const ws = await RawClient.connect(s.wsUrl);
    await ws.hello({ recipient: 'oom-pub', subs: [] });
    await ws.next('live');
    ws.send({ op: 'pub', ch: 'gr.b', data: 'refused too', ref: 'o' });
    expect(await ws.next('error')).toMatchObject({ code: 'unavailable', ref: 'o' });
    // A new reader connects and replays while Redis refuses writes.
    const reader = await RawClient.connect(s.wsUrl);
    await reader.hello({ recipient: 'oom-reader', subs: ['gr.*'], from: 'earliest' });
    await reader.next('live');
    expect(reader.msgIds()).toEqual([before.body.id]);
    await r.client.config('SET', 'maxmemory', '0');
    const after = await httpPublish(s, { ch: 'gr.a', data: 'after' });
    expect(after.status).toBe(200);
    await reader.waitFor((f) => f.id === after.body.id);
    await watcher.waitFor((f) => f.id === after.body.id);
    // Nobody was handed a message that was refused (stored nothing, so published nothing).
    for (const c of [reader, watcher])
      expect(c.frames.filter((f) => f.op === 'msg').map((f) => f.data)).toEqual(c === reader ? ['before', 'after'] : ['after']);
    await expectExact([
      [before.body.id, 'gr.a'],
      [after.body.id, 'gr.a'],
    ]);
    watcher.close();
    expect(await ready(s)).toBe(200);
    ws.close();
    reader.close();
  });

  it('Redis unable to persist (MISCONF): publishes are refused with a clear 503, readers keep working, and writes resume', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'dps-misconf-'));
    const managed = await startRedis({ dataDir, appendonly: false, extraArgs: ['--save', '3600 1'] });
    const direct = new Redis(managed.url, { protocol: 2 });
    try {
      server = await startTestServer(managed.url, ENV);
      const s = server;
      clients = PATTERNS.map(([name, patterns]) => record(s.wsUrl, name, patterns));
      await allLive(clients);
      const before = await httpPublish(s, { ch: 'gr.a', data: 'before' });
      rmSync(dataDir, { recursive: true, force: true }); // the disk under Redis is gone: snapshots fail
      await direct.bgsave();
      await until(async () => /rdb_last_bgsave_status:err/.test((await direct.info('persistence')) as string), 5000, 'the failed save');
      const refused = await httpPublish(s, { ch: 'gr.a', data: 'refused' });
      expect([refused.status, refused.body.error.message]).toEqual([503, expect.stringMatching(/cannot persist/)]);
      const reader = await RawClient.connect(s.wsUrl);
      await reader.hello({ recipient: 'misconf-reader', subs: ['gr.*'], from: 'earliest' });
      await reader.next('live');
      expect(reader.msgIds()).toEqual([before.body.id]);
      await sleep(TIMEOUT); // the heartbeats get MISCONF replies: alive, not silent
      expect(await ready(s)).toBe(200);
      await direct.config('SET', 'stop-writes-on-bgsave-error', 'no');
      const after = await httpPublish(s, { ch: 'gr.a', data: 'after' });
      expect(after.status).toBe(200);
      await expectExact([
        [before.body.id, 'gr.a'],
        [after.body.id, 'gr.a'],
      ]);
      reader.close();
    } finally {
      direct.disconnect();
      for (const c of clients) c.client.close();
      clients = [];
      await server?.stop();
      server = undefined;
      await managed.kill();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
