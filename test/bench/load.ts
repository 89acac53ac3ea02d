// The load generator of `pnpm bench`, one process per run (pinned away from the server by the harness).
// usage: tsx load.ts '<json spec>'; prints one JSON line with the results.
import { readFileSync } from 'node:fs';
import type * as Sdk from '@durable-pubsub/client-sdk';
import { Redis } from 'ioredis';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { bundle } from '../support/bundle';
import { LIVE, MSG, now, publisher, type Subscription, type System, sentAt, sseUrl, subscribe, type Transport } from './clients';
import { openFastSse, SseEvent } from './fast-sse';
import { openFastWs, startsWith } from './fast-ws';

export interface Spec {
  mode: 'ramp' | 'publish' | 'storm' | 'idle' | 'replay';
  system: System;
  /** ramp and replay: how P's readers read (default a WebSocket) */
  transport?: Transport;
  base: string;
  redisUrl: string;
  serverPid: number;
  /** every process of the system (a primary and its workers): their CPU is summed; default [serverPid] */
  serverPids?: number[];
  sockets: number;
  /** ramp: 'fanout' (all on one pattern) or 'patterns' (one pattern each plus a shared one) */
  shape?: 'fanout' | 'patterns';
  /** publishes per second, one step each */
  rates?: number[];
  stepMs?: number;
  messages?: number;
  /**
   * ramp: a step keeps the ramp going if 80 % of its deliveries arrived by the end of the step, or with this, by this
   * long (ms) after it: the rule then tells a system that falls behind from one that is only late
   */
  graceMs?: number;
  /** ramp: an unmeasured step at the first rate before the ramp, this long (ms) */
  warmMs?: number;
  /** idle: connections opened (and measured) before the rest */
  warm?: number;
}

const spec = JSON.parse(process.argv[2] as string) as Spec;
const PAD = 'x'.repeat(60); // with t and the JSON around it: ~100 B of data
const PUBACK = Buffer.from('{"op":"puback"');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ticksOf = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return Number(f[11]) + Number(f[12]); // utime + stime, 1/100 s
};
/** The system's CPU: `serverPid`, or all of `serverPids` summed. */
const cpuTicks = (pid: number) => (spec.serverPids ?? [pid]).reduce((a, p) => a + ticksOf(p), 0);

function patternsFor(system: System, shape: 'fanout' | 'patterns', i: number): string[] {
  if (shape === 'fanout') return [system === 'S' ? 'fan.x' : 'fan.*'];
  return system === 'S' ? [`user.${i}`, 'all'] : [`user.${i}.*`, 'all.*'];
}

function channelFor(system: System, shape: 'fanout' | 'patterns', n: number): string {
  if (shape === 'fanout') return 'fan.x';
  return system === 'S' ? `user.${n}` : `user.${n}.x`;
}

async function openMany(n: number, open: (i: number) => Promise<Subscription>, parallel = 100): Promise<Subscription[]> {
  const subs: Subscription[] = [];
  for (let i = 0; i < n; i += parallel)
    subs.push(...(await Promise.all(Array.from({ length: Math.min(parallel, n - i) }, (_, j) => open(i + j)))));
  return subs;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? (sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] as number) : Number.NaN;
}

/** Publishes at each rate for a step; counts deliveries in the step, latencies, and the server's CPU. */
async function ramp() {
  const shape = spec.shape ?? 'fanout';
  let delivered = 0;
  let lat: number[] = [];
  const subs = await openMany(spec.sockets, (i) =>
    subscribe(
      spec.system,
      spec.base,
      patternsFor(spec.system, shape, i),
      `bench-${i}`,
      (m) => {
        delivered++;
        // One delivery in 64 is timed (>= 3,000 samples a step): reading the time out of every eighth frame
        // was ~10 % of the load process's CPU at the fan-out maximum.
        if ((delivered & 63) === 0) lat.push(now() - sentAt(m));
      },
      spec.transport,
    ),
  );
  const pub = await publisher(spec.system, spec.base, spec.redisUrl);
  const steps: {
    rate: number;
    offered: number;
    delivered: number;
    published: number;
    p50: number;
    p99: number;
    cpuUsPerDelivery: number;
    serverCpu: number;
    loadCpu: number;
  }[] = [];
  const perPublish = shape === 'fanout' ? spec.sockets : 1;
  let n = 0;
  let failed = 0;
  const stepMs = spec.stepMs ?? 2000;
  /** Publishes at `rate` for `ms`; then waits (bounded) for the step's messages to arrive. */
  const step = async (rate: number, ms: number) => {
    await sleep(200);
    delivered = 0;
    lat = [];
    const c0 = cpuTicks(spec.serverPid);
    const own0 = process.cpuUsage();
    const t0 = performance.now();
    let sent = 0;
    let inflight = 0;
    // Every 10 ms, what the rate owes so far; a system that cannot take it just falls behind.
    while (performance.now() - t0 < ms) {
      const owed = Math.floor(((performance.now() - t0) / 1000) * rate) - sent;
      if (owed > 0 && inflight < 8) {
        const batch = Array.from({ length: owed }, () => ({
          ch: channelFor(spec.system, shape, n++ % spec.sockets),
          data: { t: now(), pad: PAD },
        }));
        sent += owed;
        inflight++;
        // An overloaded system may drop the publisher (S does): count it, do not crash the run.
        pub
          .publish(batch)
          .catch(() => {
            failed += batch.length;
          })
          .finally(() => inflight--);
      }
      await sleep(10);
    }
    const elapsed = (performance.now() - t0) / 1000;
    const inStep = delivered;
    const c1 = cpuTicks(spec.serverPid);
    const own = process.cpuUsage(own0);
    lat.sort((a, b) => a - b);
    const result = {
      rate,
      offered: Math.round((sent * perPublish) / elapsed),
      delivered: Math.round(inStep / elapsed),
      published: Math.round(sent / elapsed),
      p50: percentile(lat, 0.5),
      p99: percentile(lat, 0.99),
      cpuUsPerDelivery: inStep ? ((c1 - c0) * 10_000) / inStep : Number.NaN,
      /** share of a core the server used */
      serverCpu: (c1 - c0) / 100 / elapsed,
      /** share of a core this load process used: near 1, its own limit is in the numbers */
      loadCpu: (own.user + own.system) / 1e6 / elapsed,
    };
    // Let the backlog drain before the next step (bounded). What counts for going on: the step's deliveries by the
    // end of the step, or, with spec.graceMs, by that long after it (a late step is not a step that fell behind).
    const want = sent * perPublish;
    const ended = performance.now();
    const until = ended + 5000;
    let counted = spec.graceMs ? -1 : inStep;
    for (;;) {
      if (counted < 0 && (delivered >= want || performance.now() >= ended + (spec.graceMs ?? 0))) counted = delivered;
      if (delivered >= want || performance.now() >= until) break;
      await sleep(20);
    }
    return { result, keptUp: counted >= 0.8 * want };
  };
  // An unmeasured step first (spec.warmMs): the first messages to thousands of fresh sockets pay one-time costs on both
  // sides (each socket's first writes, each connection's first ack, JIT), which at 5,000 readers were enough to fail
  // the first measured step.
  if (spec.warmMs && spec.rates?.length) await step(spec.rates[0] as number, spec.warmMs);
  for (const rate of spec.rates ?? []) {
    const { result, keptUp } = await step(rate, stepMs);
    steps.push(result);
    // Stop once deliveries fall well behind.
    if (!keptUp) break;
  }
  pub.close();
  for (const s of subs) s.close();
  return { steps, failedPublishes: failed };
}

/** Durable publish: raw pipelined PUBLISH on the same Redis, then P over WS (HTTP: bench.ts's `http`, with autocannon). */
async function publishRates() {
  const N = spec.messages ?? 100_000;
  const data = JSON.stringify({ t: 0, pad: PAD });
  const rate = (count: number, t0: number) => Math.round(count / ((performance.now() - t0) / 1000));
  const out: Record<string, number> = {};
  const redis = new Redis(spec.redisUrl, { protocol: 2 });
  let t0 = performance.now();
  for (let i = 0; i < N; i += 1000) {
    const p = redis.pipeline();
    for (let j = 0; j < 1000; j++) p.publish('raw.x', data);
    await p.exec();
  }
  out.rawPublish = rate(N, t0);
  redis.disconnect();

  let acked = 0;
  let sentWs = 0;
  let welcomed: () => void;
  let allAcked: () => void;
  const welcome = new Promise<void>((r) => {
    welcomed = r;
  });
  const finished = new Promise<void>((r) => {
    allAcked = r;
  });
  const ws = await openFastWs(`${spec.base.replace('http', 'ws')}/ws`, (buf, start, end) => {
    if (!startsWith(buf, start, end, PUBACK)) return welcomed();
    if (++acked === N) allAcked();
    else pump();
  });
  // Up to 5,000 publishes in flight; the next one goes as each answer comes back.
  const pump = () => {
    while (sentWs < N && sentWs - acked < 5000) ws.send(`{"op":"pub","ch":"dur.z","data":{"t":0,"pad":"${PAD}"},"ref":"${sentWs++}"}`);
  };
  ws.send(JSON.stringify({ op: 'hello', v: 1, recipient: 'bench-pub', subs: [] }));
  await welcome;
  t0 = performance.now();
  pump();
  await finished;
  out.wsPub = rate(N, t0);
  ws.close();
  return out;
}

/**
 * Between clients going away and the publishes they miss: the servers see them go first (a message published
 * to a socket still closing would be delivered live and thrown away, which is not the storm's work).
 */
const AWAY_GRACE_MS = 200;

/** All clients live, then away while `messages` are published, then back together. */
async function storm() {
  const total = spec.messages ?? 500;
  const pub = await publisher(spec.system, spec.base, spec.redisUrl);
  const n = spec.sockets;
  const received = new Int32Array(n);
  const bump = (i: number) => {
    received[i] = (received[i] ?? 0) + 1;
  };
  // The SDK hands ids to the app strictly increasing: one at or below the last is a duplicate (or out of order).
  const last = new Float64Array(n);
  let duplicates = 0;
  const batch = () => Array.from({ length: total }, () => ({ ch: 'storm.x', data: { t: now(), pad: PAD } }));
  let t0 = 0;
  let live = 0;
  // Every client has received one message before it goes away (Socket.IO can only recover a session
  // that has an offset, i.e. received something).
  const warmUp = async () => {
    await pub.publish([{ ch: 'storm.x', data: { t: now(), pad: PAD } }]);
    while (received.some((r) => r < 1)) await sleep(10);
    received.fill(0);
  };
  if (spec.system === 'P') {
    // The SDK as an app ships it: bundled and minified (run from its TypeScript source through tsx, every
    // closure it creates per message also pays for tsx's keepNames helper, which no bundle has).
    const code = await bundle("export { createClient, memoryStorage } from '@durable-pubsub/client-sdk';");
    const { createClient, memoryStorage } = (await import(`data:text/javascript,${encodeURIComponent(code)}`)) as typeof Sdk;
    const storages = Array.from({ length: n }, () => memoryStorage());
    const make = (i: number) => {
      const c = createClient({
        url: `${spec.base.replace('http', 'ws')}/ws`,
        recipient: `storm-${i}`,
        storage: storages[i],
        WebSocket,
        backoffMin: 100,
        backoffMax: 2000,
      });
      c.subscribe('storm.*', (m) => {
        if (m.id <= (last[i] as number)) duplicates++;
        last[i] = m.id;
        bump(i);
      });
      return c;
    };
    let clients = Array.from({ length: n }, (_, i) => make(i));
    while (clients.some((c) => c.state !== 'live')) await sleep(20);
    await warmUp();
    for (const c of clients) c.close();
    await sleep(AWAY_GRACE_MS);
    received.fill(0);
    await pub.publish(batch());
    t0 = performance.now();
    clients = Array.from({ length: n }, (_, i) => make(i));
    while (clients.some((c) => c.state !== 'live') || received.some((r) => r < total)) {
      if (performance.now() - t0 > 60_000) break;
      await sleep(10);
    }
    live = clients.filter((c) => c.state === 'live').length;
    for (const c of clients) c.close();
  } else if (spec.system === 'S') {
    // Socket.IO recovers a session only on its own reconnection after an unexpected disconnection:
    // the transport is closed under every client, they come back together after a fixed 1.5 s.
    const AWAY_MS = 1500;
    const sockets: Socket[] = [];
    for (let i = 0; i < n; i++) {
      const s = io(spec.base, {
        transports: ['websocket'],
        forceNew: true,
        reconnectionDelay: AWAY_MS,
        reconnectionDelayMax: AWAY_MS,
        randomizationFactor: 0,
      });
      s.on('m', () => bump(i));
      sockets.push(s);
    }
    await Promise.all(sockets.map((s) => new Promise((r) => (s.connected ? r(0) : s.once('connect', () => r(0))))));
    await Promise.all(sockets.map((s) => s.emitWithAck('sub', 'storm.x')));
    await warmUp();
    const closedAt = performance.now();
    for (const s of sockets) s.io.engine.close();
    await sleep(AWAY_GRACE_MS);
    await pub.publish(batch());
    received.fill(0);
    t0 = closedAt + AWAY_MS;
    while (sockets.some((s) => !s.connected) || received.some((r) => r < total)) {
      if (performance.now() - t0 > 60_000) break;
      await sleep(10);
    }
    live = sockets.filter((s) => s.connected && s.recovered).length;
    for (const s of sockets) s.disconnect();
  } else {
    // B cannot replay: its reconnect time (sockets back and subscribed) is the baseline.
    let subs = await openMany(n, (i) => subscribe('B', spec.base, ['storm.*'], `s${i}`, () => bump(i)), n);
    for (const s of subs) s.close();
    await sleep(AWAY_GRACE_MS);
    await pub.publish(batch());
    t0 = performance.now();
    subs = await openMany(n, (i) => subscribe('B', spec.base, ['storm.*'], `s${i}`, () => bump(i)), n);
    live = subs.length;
    for (const s of subs) s.close();
  }
  const ms = performance.now() - t0;
  pub.close();
  const got = received.reduce((a, b) => a + b, 0);
  // Only P's messages carry ids, so only P's duplicates can be counted.
  return { ms, live, deliveredPct: (100 * got) / (n * total), duplicates: spec.system === 'P' ? duplicates : Number.NaN };
}

/**
 * Opens `warm` idle connections, says so, waits for SIGUSR2 (the harness has measured), opens the rest up to
 * `sockets`, says so, and waits for the harness to measure again (it kills this process).
 */
async function idle() {
  const pattern = spec.system === 'S' ? 'idle' : 'idle.*';
  const warm = spec.warm ?? 0;
  const measured = new Promise((r) => process.once('SIGUSR2', r));
  const open = (from: number, to: number) =>
    openMany(to - from, (i) => subscribe(spec.system, spec.base, [pattern], `idle-${from + i}`, () => {}), 200);
  await open(0, warm);
  process.stdout.write(`${JSON.stringify({ open: warm })}\n`);
  await measured;
  await open(warm, spec.sockets);
  process.stdout.write(`${JSON.stringify({ open: spec.sockets })}\n`);
  await sleep(600_000);
  return {};
}

/** One new recipient reads the backlog from the start; resolves once it is live, having counted `want` messages. */
function readBacklog(i: number, want: number): Promise<void> {
  let got = 0;
  const check = () => {
    if (got !== want) throw new Error(`replayed ${got} of ${want}`);
  };
  if (spec.transport === 'sse')
    return new Promise((resolve, reject) => {
      // The stream's first read may hold everything up to `live` (a short backlog), before the stream is handed over.
      let stream: { close(): void } | undefined;
      let live = false;
      openFastSse(sseUrl(spec.base, `replay-${i}`, ['rep.*'], 'earliest'), (event) => {
        if (event === SseEvent.msg) got++;
        else if (event === SseEvent.live) {
          check();
          live = true;
          stream?.close();
          resolve();
        }
      }).then((s) => {
        stream = s;
        if (live) s.close();
      }, reject);
    });
  return new Promise((resolve, reject) => {
    // Nothing comes before the hello: the socket is there when `live` does.
    let ws: { close(): void } | undefined;
    openFastWs(`${spec.base.replace('http', 'ws')}/ws`, (buf, start, end) => {
      if (startsWith(buf, start, end, MSG)) got++;
      else if (startsWith(buf, start, end, LIVE)) {
        check();
        ws?.close();
        resolve();
      }
    }).then((w) => {
      ws = w;
      w.send(JSON.stringify({ op: 'hello', v: 1, recipient: `replay-${i}`, subs: ['rep.*'], from: 'earliest' }));
    }, reject);
  });
}

/** P only: `sockets` new recipients read a backlog from the start at once (over `transport`); each one's time to live. */
async function replay() {
  const n = spec.sockets;
  const want = spec.messages ?? 100_000;
  const c0 = cpuTicks(spec.serverPid);
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  const toLive: number[] = [];
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      await readBacklog(i, want);
      toLive.push(performance.now() - t0);
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const own = process.cpuUsage(own0);
  toLive.sort((a, b) => a - b);
  return {
    seconds: elapsed,
    msgPerSec: Math.round((n * want) / elapsed),
    /** ms from the start until each reader was live */
    liveP50: percentile(toLive, 0.5),
    liveMax: toLive[toLive.length - 1] as number,
    serverCpu: (cpuTicks(spec.serverPid) - c0) / 100 / elapsed,
    loadCpu: (own.user + own.system) / 1e6 / elapsed,
  };
}

const modes = { ramp, publish: publishRates, storm, idle, replay };
const result = await modes[spec.mode]();
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
