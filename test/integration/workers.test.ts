// `durable-pubsub serve --workers 2`: a primary and two worker processes on one port and one Redis. Connections land on
// both; /metrics and /v1/recipients answer for every worker; kill -9 a worker and the primary starts another while its
// clients resume on the survivor with every message exactly once; the demo feed runs once; SIGTERM stops all of it.
import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from '@durable-pubsub/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpPublish, processAlive, startTestRedis, type TestRedis, until } from '../support/env';
import { RawClient } from '../support/raw-client';
import { allLive, type Recorder, record, steadyPublisher } from '../support/recorder';

const BIN = new URL('../../server/bin/durable-pubsub.mjs', import.meta.url).pathname;

let redis: TestRedis;
let primary: ChildProcess;
let out = '';
let base = '';
let wsUrl = '';

interface Line {
  msg: string;
  worker?: number;
  pid?: number;
  conn?: string;
  recipient?: string;
}
/** The JSON log lines so far (every process writes to the primary's stdout), complete ones only. */
const lines = (): Line[] =>
  out
    .slice(0, out.lastIndexOf('\n'))
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
const logged = (msg: string) => lines().filter((l) => l.msg === msg);
/** pids of the workers that said they serve and still run */
const servingPids = () => logged('worker is serving').flatMap((l) => (processAlive(l.pid as number) ? [l.pid as number] : []));
/** the worker process a connection was opened on */
const pidOfConn = (conn: string) => logged('connection open').find((l) => l.conn === conn)?.pid;
const pidOfRecipient = (recipient: string) => logged('connection open').findLast((l) => l.recipient === recipient)?.pid;
const metrics = async () => (await fetch(`${base}/metrics`)).text();
const gauge = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);

/** Raw clients of `recipient`, opened one after another until there is one on every serving worker. */
async function onEveryWorker(recipient: string, subs: string[]): Promise<{ clients: RawClient[]; pids: Set<number> }> {
  const clients: RawClient[] = [];
  const pids = new Set<number>();
  const want = servingPids().length;
  while (pids.size < want) {
    if (clients.length >= 10) throw new Error(`10 connections landed on ${pids.size} of ${want} workers`);
    const c = await RawClient.connect(wsUrl);
    const { conn } = await c.hello({ recipient, subs });
    await until(() => pidOfConn(conn) !== undefined, 10_000, 'the connection to be logged');
    pids.add(pidOfConn(conn) as number);
    clients.push(c);
  }
  return { clients, pids };
}

beforeAll(async () => {
  redis = await startTestRedis();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  wsUrl = `ws://127.0.0.1:${port}/ws`;
  primary = spawn(process.execPath, [BIN, 'serve', '--workers', '2'], {
    env: { ...process.env, PORT: String(port), REDIS_URL: redis.url, DPS_LOG_LEVEL: 'info', DPS_DEMO: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  primary.stdout?.on('data', (d) => {
    out += d;
  });
  await until(() => logged('durable-pubsub is listening').length > 0, 30_000, 'the workers to listen');
}, 60_000);

afterAll(async () => {
  // A failed test may leave it running: its workers exit with it (their channel to the primary closes).
  if (primary && primary.exitCode === null && primary.signalCode === null) primary.kill('SIGKILL');
  await redis?.cleanup();
});

describe('serve --workers 2', () => {
  let clients: Recorder[] = [];

  it('spreads connections over both workers; /metrics and /v1/recipients count the connections of every worker', async () => {
    const workers = servingPids();
    expect(workers.length).toBe(2);
    clients = Array.from({ length: 6 }, (_, i) => record(wsUrl, `wk-${i}`, ['wk.*']));
    await allLive(clients);
    await until(() => clients.every((_, i) => pidOfRecipient(`wk-${i}`) !== undefined), 10_000, 'every connection logged');
    expect([...new Set(clients.map((_, i) => pidOfRecipient(`wk-${i}`)))].sort()).toEqual([...workers].sort());

    // One recipient with a connection on each worker: counted once per connection, whichever worker answers.
    const shared = await onEveryWorker('wk-shared', ['wk.shared']);
    const res = await fetch(`${base}/v1/recipients`);
    const { recipients } = (await res.json()) as { recipients: { name: string; connections: number }[] };
    const connections = Object.fromEntries(recipients.map((r) => [r.name, r.connections]));
    expect(connections).toEqual({ ...Object.fromEntries(clients.map((_, i) => [`wk-${i}`, 1])), 'wk-shared': shared.clients.length });

    // /metrics, summed over the workers, and a series per worker.
    const total = clients.length + shared.clients.length;
    let text = '';
    await until(async () => gauge((text = await metrics()), 'dps_connections{state="live"}') === total, 10_000, 'every connection live');
    const perWorker = [...text.matchAll(/^dps_worker_connections\{worker="(\d+)"\} (\d+)$/gm)].map((m) => Number(m[2]));
    expect(perWorker.length).toBe(2);
    expect(perWorker.every((n) => n > 0)).toBe(true);
    expect(perWorker.reduce((a, b) => a + b)).toBe(total);
    expect(gauge(text, 'process_max_fds')).toBeGreaterThan(0);
    for (const c of shared.clients) c.close();
  });

  it('kill -9 the worker running the demo feed: another is started, the feed moves, and its clients resume on the survivor exactly', async () => {
    const before = servingPids();
    const feeds = logged('running the demo feed');
    expect(feeds.length).toBe(1);
    const victim = feeds[0]?.pid as number;
    const onVictim = clients.filter((_, i) => pidOfRecipient(`wk-${i}`) === victim);
    expect(onVictim.length).toBeGreaterThan(0);
    const dropped = new Set<Recorder>();
    for (const c of clients) c.client.on('state', (e) => e.newState === 'reconnecting' && dropped.add(c));

    const pub = steadyPublisher(base, 'wk', ['wk.a', 'wk.b'], 2);
    await until(() => clients.every((c) => c.seen.length >= 20), 20_000, 'every client to receive');
    process.kill(victim, 'SIGKILL');
    await until(() => !processAlive(victim), 10_000, 'the worker to die');
    await until(() => servingPids().some((p) => !before.includes(p)), 30_000, 'a new worker to serve');
    await until(() => logged('running the demo feed').length === 2, 10_000, 'the feed to move');
    expect(logged('running the demo feed')[1]?.pid).not.toBe(victim);
    await until(() => onVictim.every((c) => dropped.has(c)) && clients.every((c) => c.client.state === 'live'), 20_000, 'clients back');
    // Publishing goes on after the move; then every client has every message, once, in order.
    const after = clients.map((c) => c.seen.length);
    await until(() => clients.every((c, i) => c.seen.length >= (after[i] as number) + 20), 20_000, 'more messages after the kill');
    const { published } = await pub.stop();
    const want = published.map(([id]) => id).sort((a, b) => a - b);
    await until(() => clients.every((c) => c.seen.length >= want.length), 30_000, 'every client to catch up');
    for (const c of clients) {
      expect(c.resets).toBe(0);
      expect(c.seen).toEqual(want);
    }
    expect(processAlive(primary.pid as number)).toBe(true);

    // /metrics answers for the survivor and the new worker.
    const now = servingPids();
    expect(now.length).toBe(2);
    const ids = logged('worker is serving')
      .filter((l) => now.includes(l.pid as number))
      .map((l) => String(l.worker))
      .sort();
    let shown: string[] = [];
    await until(
      async () =>
        (shown = [...(await metrics()).matchAll(/^dps_worker_connections\{worker="(\d+)"\}/gm)]
          .map((m) => m[1] as string)
          .sort()).join() === ids.join(),
      10_000,
      'the new worker in /metrics',
    );
    expect(shown).toEqual(ids);
    for (const c of clients) c.client.close();
  });

  it('SIGTERM: every worker closes its sockets with 1001, the primary exits 0, and no worker is left', async () => {
    const { clients: raw, pids } = await onEveryWorker('wk-term', ['wk.term']);
    const { body } = await httpPublish({ url: base }, { ch: 'wk.term', data: 1 });
    for (const c of raw) await c.waitFor((f) => f.op === 'msg' && f.id === body.id);
    const exited = new Promise((r) => primary.once('exit', (code) => r(code)));
    primary.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(await Promise.all(raw.map((c) => c.closed()))).toEqual(raw.map(() => 1001));
    // The primary exits after its workers did.
    expect([...pids].filter(processAlive)).toEqual([]);
    expect(servingPids()).toEqual([]);
    expect(logged('worker stopping').length).toBeGreaterThanOrEqual(2);
  });
});
