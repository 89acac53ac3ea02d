// `pnpm bench [--quick] [--runs N] [--only fanout,patterns,publish,replay,storm,idle,sse,http,connections,workers] [--systems P,B,S]`
// P (this project), B (a bare ws + PSUBSCRIBE bridge) and S (Socket.IO 4.8 + redis-streams-adapter with
// connection state recovery), each started fresh on a fresh redis-server of the same build. Servers are
// pinned to CPU 0, Redis and the load generators to CPU 1 (taskset), when the machine has two or more.
// Prints a table per scenario (medians of the runs, ratios P/B and P/S; for `sse`, P's SSE against P's WebSocket; for
// `http`, P's POST /v1/publish under autocannon against H, a bare node:http JSON server) and writes
// test/bench/results/latest.json.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, type ManagedRedis, Store, startRedis } from '@durable-pubsub/server';
import { commandConnection, connect } from '@durable-pubsub/server/src/redis/connect';
import type { System, Transport } from './clients';
import { connections } from './connections';
import { type Fsync, httpScenario } from './http';
import type { Spec } from './load';
import { netdevBacklog } from './procs';
import { workers } from './workers';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    only: { type: 'string' },
    systems: { type: 'string' },
  },
});
const QUICK = values.quick;
const RUNS = Number(values.runs ?? (QUICK ? 1 : 3));
const ONLY = values.only?.split(',');
const ROOT = new URL('../../', import.meta.url).pathname;
const PINNING = cpus().length >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
const pin = (cpu: number, cmd: string[]) => (PINNING ? ['taskset', '-c', String(cpu), ...cmd] : cmd);

interface Row {
  scenario: string;
  /** H: the bare node:http server of scenario `http` */
  system: System | 'raw' | 'H';
  metric: string;
  value: number;
  unit: string;
  /** scenario `sse`: how P's readers read */
  transport?: Transport;
  /** scenario `http`: P's Redis's appendfsync (append-only on) */
  fsync?: Fsync;
  /** scenarios `connections` and `workers`: the number of connections (or readers), and server processes */
  point?: number;
  workers?: number;
}
const rows: Row[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
const hwmKb = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? (s[Math.floor((s.length - 1) / 2)] as number) : Number.NaN;
};

interface Running {
  redis: ManagedRedis;
  child: ChildProcess;
  pid: number;
  base: string;
  stop(): Promise<void>;
}

/** A fresh Redis (pinned with the load) and a fresh system (pinned alone). Redis persists nothing unless `fsync`. */
async function start(system: System | 'H', env: Record<string, string> = {}, fsync?: Fsync): Promise<Running> {
  const dataDir = mkdtempSync(join(tmpdir(), 'dps-bench-'));
  const redis = await startRedis({ dataDir, ...(fsync ? { appendfsync: fsync } : { appendonly: false }) });
  if (PINNING) spawnSync('taskset', ['-cp', '1', String(redis.child.pid)]);
  const port = await freePort();
  const entry = {
    P: 'server/src/main.ts',
    B: 'test/bench/systems/bare.ts',
    S: 'test/bench/systems/sio.ts',
    H: 'test/bench/systems/bare-http.ts',
  }[system];
  // DPS_BENCH_PROF=<dir>: P and B write a CPU profile there (`node --cpu-prof`) when they stop.
  const prof = system !== 'S' && process.env.DPS_BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.DPS_BENCH_PROF}`] : [];
  const cmd = pin(0, [process.execPath, ...prof, '--import', 'tsx', join(ROOT, entry)]);
  const child = spawn(cmd[0] as string, cmd.slice(1), {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      REDIS_URL: redis.url,
      DPS_LOG_LEVEL: 'error',
      // One process (its pid's RSS and CPU are what is measured); B and S are one process too.
      DPS_WORKERS: '1',
      DPS_MAX_FRAMES_PER_SEC: '10000000',
      DPS_RETENTION_MAX_LEN: '1000000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  // P answers /readyz once Redis is up; B and S say "listening".
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${system} did not start`)), 20_000);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    child.stdout?.on('data', (d) => String(d).includes('listening') && done());
    if (system === 'P')
      void (async () => {
        while (
          !(await fetch(`${base}/readyz`).then(
            (r) => r.ok,
            () => false,
          ))
        )
          await sleep(50);
        done();
      })();
  });
  // With taskset the child is `taskset`, which execs node: same pid.
  const pid = child.pid as number;
  return {
    redis,
    child,
    pid,
    base,
    async stop() {
      // A profiled system stops cleanly so that its profile is written.
      child.kill(prof.length ? 'SIGTERM' : 'SIGKILL');
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(0) : child.once('exit', r)));
      await redis.kill();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs the load generator with `spec`; resolves with its last JSON line. With `onLine`, each line goes to it
 * as it comes (with its index) until it returns true: then the generator is killed and that line resolves.
 */
function load<T>(
  spec: Omit<Spec, 'serverPid' | 'redisUrl' | 'base'>,
  sys: Running,
  onLine?: (line: T, index: number, child: ChildProcess) => Promise<boolean>,
): Promise<T> {
  const full: Spec = { ...spec, serverPid: sys.pid, redisUrl: sys.redis.url, base: sys.base } as Spec;
  // DPS_BENCH_LOAD_PROF=<dir>: the load generator writes a CPU profile there when it exits.
  const prof = process.env.DPS_BENCH_LOAD_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.DPS_BENCH_LOAD_PROF}`] : [];
  const cmd = pin(1, [process.execPath, ...prof, '--import', 'tsx', join(ROOT, 'test/bench/load.ts'), JSON.stringify(full)]);
  const child = spawn(cmd[0] as string, cmd.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let seen = 0;
  let chain = Promise.resolve();
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const lines = out.split('\n').slice(0, -1);
      for (; onLine && seen < lines.length; seen++) {
        const line = JSON.parse(lines[seen] as string) as T;
        const index = seen;
        const fn = onLine;
        // Lines are handled one after another, each after the previous one's measurement.
        chain = chain
          .then(async () => {
            if (!(await fn(line, index, child))) return;
            onLine = undefined;
            child.kill('SIGKILL');
            resolve(line);
          })
          .catch((err) => {
            // A failed measurement ends the run (no unhandled rejection, no generator left behind).
            onLine = undefined;
            child.kill('SIGKILL');
            reject(err);
          });
      }
    });
    child.on('exit', (code) => {
      if (child.signalCode === 'SIGKILL') return;
      if (code !== 0) return reject(new Error(`load generator (${spec.mode} ${spec.system}) exited with ${code}`));
      resolve(JSON.parse(out.trim().split('\n').pop() as string) as T);
    });
  });
}

/** `fn` on one fresh start of `system`. */
async function once<T>(system: System | 'H', fn: (sys: Running) => Promise<T>, env?: Record<string, string>, fsync?: Fsync): Promise<T> {
  const sys = await start(system, env, fsync);
  try {
    return await fn(sys);
  } finally {
    await sys.stop();
  }
}

/** `fn` on RUNS fresh starts of `system` (their median is shown). */
async function runs<T>(system: System | 'H', fn: (sys: Running) => Promise<T>, env?: Record<string, string>, fsync?: Fsync): Promise<T[]> {
  const out: T[] = [];
  for (let r = 0; r < RUNS; r++) out.push(await once(system, fn, env, fsync));
  return out;
}

function record(
  scenario: string,
  system: Row['system'],
  metric: string,
  value: number,
  unit: string,
  transport?: Transport,
  fsync?: Fsync,
) {
  rows.push({ scenario, system, metric, value, unit, ...(transport && { transport }), ...(fsync && { fsync }) });
}

const fmt = (v: number) =>
  !Number.isFinite(v) ? 'n/a' : Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(Math.abs(v) >= 10 ? 1 : 2);

/** One table: a line per metric, a column per system, and the ratios P/B and P/S. */
function table(scenario: string, title: string) {
  const mine = rows.filter((r) => r.scenario === scenario);
  const metrics = [...new Set(mine.map((r) => r.metric))];
  const get = (m: string, s: string) => mine.find((r) => r.metric === m && r.system === s)?.value ?? Number.NaN;
  console.log(`\n${title}`);
  const head = ['metric', 'unit', 'P', 'B', 'S', 'raw', 'P/B', 'P/S', 'P/raw'];
  const lines = metrics.map((m) => {
    const unit = mine.find((r) => r.metric === m)?.unit ?? '';
    const [p, b, s, raw] = ['P', 'B', 'S', 'raw'].map((x) => get(m, x)) as [number, number, number, number];
    return [m, unit, fmt(p), fmt(b), fmt(s), fmt(raw), fmt(p / b), fmt(p / s), fmt(p / raw)];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const show = (cells: string[]) =>
    `  ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ')}`;
  console.log(show(head));
  for (const l of lines) console.log(show(l));
}

const SYSTEMS = (values.systems?.split(',') ?? ['P', 'B', 'S']).filter((s): s is System => ['P', 'B', 'S'].includes(s));
const want = (name: string) => !ONLY || ONLY.includes(name);

async function fanout() {
  const sockets = QUICK ? 200 : 1000;
  const rates = QUICK ? [100, 500, 2000] : [100, 200, 400, 700, 1000, 1500, 2000, 3000];
  const stepMs = QUICK ? 700 : 2000;
  type Step = { rate: number; delivered: number; p50: number; p99: number; cpuUsPerDelivery: number; loadCpu: number };
  const max = new Map<System, number>();
  for (const system of SYSTEMS) {
    const results = await runs(system, (sys) =>
      load<{ steps: Step[] }>({ mode: 'ramp', shape: 'fanout', system, sockets, rates, stepMs }, sys),
    );
    const best = results.map((r) => r.steps.reduce((a, b) => (b.delivered > a.delivered ? b : a)));
    max.set(system, median(best.map((b) => b.delivered)));
    record('fanout', system, 'max delivered', median(best.map((b) => b.delivered)), 'msg/s');
    record('fanout', system, 'server CPU per delivery at max', median(best.map((b) => b.cpuUsPerDelivery)), 'µs');
    // Near 100 %, the load process (not the system) set the max.
    record('fanout', system, 'load generator CPU at max', median(best.map((b) => 100 * b.loadCpu)), '%');
  }
  // Latency at half of B's best rate, for everyone (not in --quick: the same load mode as the ramp, one step).
  const half = Math.max(1, Math.round((0.5 * (max.get('B') ?? max.get('P') ?? 0)) / sockets));
  for (const system of QUICK ? [] : SYSTEMS) {
    const results = await runs(system, (sys) =>
      load<{ steps: Step[] }>({ mode: 'ramp', shape: 'fanout', system, sockets, rates: [half], stepMs: QUICK ? 1000 : 3000 }, sys),
    );
    const steps = results.map((r) => r.steps[0] as Step);
    record('fanout', system, `p50 latency at ${half} pub/s`, median(steps.map((s) => s.p50)), 'ms');
    record('fanout', system, `p99 latency at ${half} pub/s`, median(steps.map((s) => s.p99)), 'ms');
    record('fanout', system, `server CPU per delivery at ${half} pub/s`, median(steps.map((s) => s.cpuUsPerDelivery)), 'µs');
    // The latency includes the load's own queueing: its CPU at this rate says how much.
    record('fanout', system, `load generator CPU at ${half} pub/s`, median(steps.map((s) => 100 * s.loadCpu)), '%');
  }
  table('fanout', `1. Fan-out: ${sockets} sockets on one pattern, ~100 B messages, publish rate ramped (${rates.join(', ')} /s)`);
}

async function patterns() {
  const sockets = QUICK ? 400 : 2000;
  const rates = QUICK ? [2000, 8000, 20000] : [2000, 5000, 10000, 20000, 40000, 60000];
  const stepMs = QUICK ? 700 : 2000;
  type Step = { delivered: number; published: number; cpuUsPerDelivery: number };
  for (const system of SYSTEMS) {
    const results = await runs(system, (sys) =>
      load<{ steps: Step[] }>({ mode: 'ramp', shape: 'patterns', system, sockets, rates, stepMs }, sys),
    );
    const best = results.map((r) => r.steps.reduce((a, b) => (b.delivered > a.delivered ? b : a)));
    record('patterns', system, 'max delivered', median(best.map((b) => b.delivered)), 'msg/s');
    record('patterns', system, 'publish rate sustained', median(best.map((b) => b.published)), 'pub/s');
    record('patterns', system, 'server CPU per delivery at max', median(best.map((b) => b.cpuUsPerDelivery)), 'µs');
  }
  table(
    'patterns',
    `2. Many patterns: ${sockets} sockets, each user.<n>.* plus all.*; publishes spread over users (ramped ${rates.join(', ')} /s)`,
  );
}

async function publish() {
  const messages = QUICK ? 20_000 : 200_000;
  const results = await runs('P', (sys) => load<Record<string, number>>({ mode: 'publish', system: 'P', sockets: 0, messages }, sys));
  // HTTP publishing is scenario `http` (an external load generator: this process's own HTTP client was its limit).
  for (const [k, label] of [['wsPub', 'WS pub (5,000 in flight)']] as const) {
    const v = median(results.map((r) => r[k] as number));
    record('publish', 'P', label, v, 'msg/s');
    record('publish', 'raw', label, median(results.map((r) => r.rawPublish as number)), 'msg/s');
  }
  table(
    'publish',
    `3. Durable publish: ${messages.toLocaleString('en-US')} messages of ~100 B, P's store path vs raw pipelined PUBLISH on the same Redis`,
  );
}

/** A backlog of `messages` on 4 channels `rep.<n>`, published through the server's store path straight on its Redis. */
async function fillBacklog(sys: Running, messages: number) {
  const redis = commandConnection(sys.redis.url);
  await connect(redis);
  const store = new Store(redis, { namespace: 'default', retentionMaxLen: 1_000_000, idempotencyWindowSec: 60 });
  await store.init();
  const pad = 'x'.repeat(80);
  for (let i = 0; i < messages; i += 2000)
    await Promise.all(Array.from({ length: Math.min(2000, messages - i) }, (_, j) => store.publish(`rep.${(i + j) % 4}`, pad)));
  redis.disconnect();
}

async function replay() {
  const messages = QUICK ? 20_000 : 100_000;
  // 1,000 readers read a fifth of the backlog (20 million deliveries, not 100): what a reader costs must not depend on it.
  const points = QUICK
    ? [
        [1, messages],
        [20, messages],
        [200, messages / 5],
      ]
    : [
        [1, messages],
        [100, messages],
        [1000, messages / 5],
      ];
  for (const [readers, backlog] of points as [number, number][]) {
    const r = await runs('P', async (sys) => {
      await fillBacklog(sys, backlog);
      await sleep(500);
      const before = rssKb(sys.pid);
      const out = await load<{ msgPerSec: number }>({ mode: 'replay', system: 'P', sockets: readers, messages: backlog }, sys);
      return { rate: out.msgPerSec, growthMb: (hwmKb(sys.pid) - before) / 1024 };
    });
    const what = readers === 1 ? '1 client' : `${readers} clients at once`;
    const of = backlog === messages ? '' : ` (${backlog.toLocaleString('en-US')} messages)`;
    record('replay', 'P', `to ${what}${of}${readers > 1 ? ' (total)' : ''}`, median(r.map((x) => x.rate)), 'msg/s');
    record('replay', 'P', `server peak RSS growth, ${what}${of}`, median(r.map((x) => x.growthMb)), 'MB');
    record('replay', 'P', `server peak RSS growth per reader, ${what}${of}`, (median(r.map((x) => x.growthMb)) * 1024) / readers, 'KB');
  }
  table(
    'replay',
    `4. Replay: a ${messages.toLocaleString('en-US')}-message backlog read from the start (B stores nothing; S replays only missed packets of a recovered session, see storm)`,
  );
}

async function storm() {
  const sockets = QUICK ? 200 : 2000;
  const messages = QUICK ? 100 : 500;
  for (const system of SYSTEMS) {
    const results = await runs(system, (sys) =>
      load<{ ms: number; live: number; deliveredPct: number; duplicates: number }>({ mode: 'storm', system, sockets, messages }, sys),
    );
    record('storm', system, 'all live and caught up', median(results.map((r) => r.ms)), 'ms');
    record('storm', system, 'clients live (recovered for S)', median(results.map((r) => r.live)), 'clients');
    record('storm', system, 'missed messages delivered', median(results.map((r) => r.deliveredPct)), '%');
    record('storm', system, 'duplicates', median(results.map((r) => r.duplicates)), 'msgs');
  }
  table(
    'storm',
    `5. Reconnect storm: ${sockets} clients, each missing ${messages} messages, reconnect together (P with its SDK, S with socket.io-client)`,
  );
}

/**
 * Memory per idle connection as the slope between two settled points: RSS with a fifth of the connections
 * open and with all of them, each read once the server has been idle for IDLE_SETTLE_MS. The slope leaves out
 * what any process gains once (code compiled for the first connections, buffer pools), and the wait lets V8's
 * memory reducer return the garbage of opening the connections, which no idle connection keeps: read 1.5 s
 * after opening, the same servers measure 0.5–1 KB more per connection, by where each one's GC happens to be.
 */
async function idle() {
  const sockets = QUICK ? 1000 : 10_000;
  const settleMs = QUICK ? 1500 : 10_000;
  for (const system of SYSTEMS) {
    const results = await runs(system, async (sys) => {
      const rss: number[] = [];
      const opened: number[] = [];
      await load<{ open: number }>({ mode: 'idle', system, sockets, warm: sockets / 5 }, sys, async (line, i, child) => {
        await sleep(settleMs);
        rss.push(rssKb(sys.pid));
        opened.push(line.open);
        if (i === 0) child.kill('SIGUSR2'); // open the rest
        return i === 1;
      });
      const [r0, r1] = rss as [number, number];
      return ((r1 - r0) * 1024) / ((opened[1] as number) - (opened[0] as number));
    });
    record('idle', system, 'server RSS per connection', median(results) / 1024, 'KB');
  }
  table(
    'idle',
    `6. Idle memory: ${sockets.toLocaleString('en-US')} idle connections (RSS growth per connection from ${(sockets / 5).toLocaleString('en-US')} to ${sockets.toLocaleString('en-US')}, each read after ${settleMs / 1000} s idle)`,
  );
}

/** One line of the SSE table: a metric over both transports, with the CPU of the server and of the load beside it. */
interface SseLine {
  what: string;
  metric: string;
  unit: string;
  ws: number;
  sse: number;
  /** share of a core, WebSocket then SSE; only on a point's first line */
  server?: [number, number];
  load?: [number, number];
}

/**
 * 7. P's SSE readers against its WebSocket readers, on the same scenario: fan-out (N readers of one pattern, the
 * publish rate ramped; then the latency at half the lower maximum) and catch-up (K new readers of a backlog of M).
 * Every measurement has a fresh server; the load process's CPU is printed beside the server's, because a figure the
 * load limits is not the server's.
 */
async function sse() {
  if (!SYSTEMS.includes('P')) return;
  const lines: SseLine[] = [];
  const pct = (x: number) => 100 * x;
  const both = async <T>(fn: (transport: Transport, sys: Running) => Promise<T>) => ({
    ws: await runs('P', (sys) => fn('ws', sys)),
    sse: await runs('P', (sys) => fn('sse', sys)),
  });
  const add = (line: SseLine) => {
    lines.push(line);
    const metric = `${line.what}: ${line.metric}`;
    record('sse', 'P', metric, line.ws, line.unit, 'ws');
    record('sse', 'P', metric, line.sse, line.unit, 'sse');
    if (line.server) {
      record('sse', 'P', `${line.what}: server CPU`, pct(line.server[0]), '%', 'ws');
      record('sse', 'P', `${line.what}: server CPU`, pct(line.server[1]), '%', 'sse');
    }
    if (line.load) {
      record('sse', 'P', `${line.what}: load generator CPU`, pct(line.load[0]), '%', 'ws');
      record('sse', 'P', `${line.what}: load generator CPU`, pct(line.load[1]), '%', 'sse');
    }
  };

  type Step = { delivered: number; p50: number; p99: number; cpuUsPerDelivery: number; serverCpu: number; loadCpu: number };
  const fanouts = QUICK
    ? [{ sockets: 200, rates: [100, 500, 2000] }]
    : [
        { sockets: 1000, rates: [100, 200, 400, 700, 1000, 1500, 2000, 3000] },
        { sockets: 5000, rates: [20, 40, 80, 140, 200, 300, 400, 600] },
      ];
  const stepMs = QUICK ? 700 : 2000;
  for (const { sockets, rates } of fanouts) {
    const what = `fan-out, ${sockets.toLocaleString('en-US')} readers`;
    const steps = await both(async (transport, sys) => {
      const r = await load<{ steps: Step[] }>({ mode: 'ramp', shape: 'fanout', system: 'P', transport, sockets, rates, stepMs }, sys);
      return r.steps;
    });
    const best = (xs: Step[]) => xs.reduce((a, b) => (b.delivered > a.delivered ? b : a));
    const ramp = { ws: steps.ws.map(best), sse: steps.sse.map(best) };
    const at = (xs: Step[], f: (s: Step) => number) => median(xs.map(f));
    const max = { ws: at(ramp.ws, (s) => s.delivered), sse: at(ramp.sse, (s) => s.delivered) };
    add({
      what,
      metric: 'max delivered',
      unit: 'msg/s',
      ...max,
      server: [at(ramp.ws, (s) => s.serverCpu), at(ramp.sse, (s) => s.serverCpu)],
      load: [at(ramp.ws, (s) => s.loadCpu), at(ramp.sse, (s) => s.loadCpu)],
    });
    add({
      what,
      metric: 'server CPU per delivery at max',
      unit: 'µs',
      ws: at(ramp.ws, (s) => s.cpuUsPerDelivery),
      sse: at(ramp.sse, (s) => s.cpuUsPerDelivery),
    });
    // Latency where both keep up: half of the lower maximum, measured on its own. The quick run reads it off the
    // ramp's first step instead (two fresh servers fewer).
    const rate = QUICK ? (rates[0] as number) : Math.max(1, Math.round((0.5 * Math.min(max.ws, max.sse)) / sockets));
    const steady = QUICK
      ? { ws: steps.ws.map((xs) => xs[0] as Step), sse: steps.sse.map((xs) => xs[0] as Step) }
      : await both(async (transport, sys) => {
          const r = await load<{ steps: Step[] }>(
            { mode: 'ramp', shape: 'fanout', system: 'P', transport, sockets, rates: [rate], stepMs: 3000 },
            sys,
          );
          return r.steps[0] as Step;
        });
    const label = `${what}, ${rate} pub/s`;
    add({
      what: label,
      metric: 'p50 latency',
      unit: 'ms',
      ws: at(steady.ws, (s) => s.p50),
      sse: at(steady.sse, (s) => s.p50),
      server: [at(steady.ws, (s) => s.serverCpu), at(steady.sse, (s) => s.serverCpu)],
      load: [at(steady.ws, (s) => s.loadCpu), at(steady.sse, (s) => s.loadCpu)],
    });
    add({ what: label, metric: 'p99 latency', unit: 'ms', ws: at(steady.ws, (s) => s.p99), sse: at(steady.sse, (s) => s.p99) });
    add({
      what: label,
      metric: 'server CPU per delivery',
      unit: 'µs',
      ws: at(steady.ws, (s) => s.cpuUsPerDelivery),
      sse: at(steady.sse, (s) => s.cpuUsPerDelivery),
    });
  }

  const messages = QUICK ? 20_000 : 100_000;
  type Replayed = { msgPerSec: number; liveP50: number; liveMax: number; serverCpu: number; loadCpu: number; growthMb: number };
  for (const readers of QUICK ? [20] : [1, 100]) {
    const what = `catch-up, ${readers} × ${messages.toLocaleString('en-US')}`;
    const r = await both(async (transport, sys) => {
      await fillBacklog(sys, messages);
      await sleep(500);
      const before = rssKb(sys.pid);
      const out = await load<Omit<Replayed, 'growthMb'>>({ mode: 'replay', system: 'P', transport, sockets: readers, messages }, sys);
      return { ...out, growthMb: (hwmKb(sys.pid) - before) / 1024 };
    });
    const at = (xs: Replayed[], f: (x: Replayed) => number) => median(xs.map(f));
    add({
      what,
      metric: readers > 1 ? 'msg/s (total)' : 'msg/s',
      unit: 'msg/s',
      ws: at(r.ws, (x) => x.msgPerSec),
      sse: at(r.sse, (x) => x.msgPerSec),
      server: [at(r.ws, (x) => x.serverCpu), at(r.sse, (x) => x.serverCpu)],
      load: [at(r.ws, (x) => x.loadCpu), at(r.sse, (x) => x.loadCpu)],
    });
    if (readers > 1)
      add({ what, metric: 'time to live, median reader', unit: 'ms', ws: at(r.ws, (x) => x.liveP50), sse: at(r.sse, (x) => x.liveP50) });
    add({
      what,
      metric: readers > 1 ? 'time to live, last reader' : 'time to live',
      unit: 'ms',
      ws: at(r.ws, (x) => x.liveMax),
      sse: at(r.sse, (x) => x.liveMax),
    });
    add({ what, metric: 'server peak RSS growth', unit: 'MB', ws: at(r.ws, (x) => x.growthMb), sse: at(r.sse, (x) => x.growthMb) });
  }

  console.log(`\n7. SSE against the WebSocket, both P (GET /v1/sse vs /ws; readers ack as the SDK does; CPU: % of a core, WS / SSE)`);
  const head = ['scenario', 'metric', 'unit', 'WS', 'SSE', 'SSE/WS', 'server CPU', 'load CPU'];
  const cpu = (x?: [number, number]) => (x ? `${Math.round(pct(x[0]))} / ${Math.round(pct(x[1]))} %` : '');
  const cells = lines.map((l, i) => [
    l.what === lines[i - 1]?.what ? '' : l.what,
    l.metric,
    l.unit,
    fmt(l.ws),
    fmt(l.sse),
    fmt(l.sse / l.ws),
    cpu(l.server),
    cpu(l.load),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)));
  const show = (c: string[]) =>
    `  ${c.map((x, i) => (i < 3 ? x.padEnd(widths[i] as number) : x.padStart(widths[i] as number))).join('  ')}`;
  console.log(show(head));
  for (const c of cells) console.log(show(c));
}

/** 8. HTTP publishing under autocannon, P against H (test/bench/http.ts). */
async function http() {
  if (!SYSTEMS.includes('P')) return;
  await httpScenario({
    quick: QUICK,
    root: ROOT,
    pin,
    rounds: RUNS,
    once,
    median,
    fmt,
    record: (system, metric, value, unit, fsync) => record('http', system, metric, value, unit, undefined, fsync),
  });
}

const redisVersion = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim();
const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryGb: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  redis: redisVersion,
  pinning: PINNING ? 'servers on CPU 0; Redis and load generators on CPU 1 (taskset)' : 'none',
  netdevMaxBacklog: netdevBacklog(),
  runs: RUNS,
  quick: QUICK,
};
console.log(
  `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGb} GiB, Node ${machine.node}, ${redisVersion.split(' ').slice(0, 3).join(' ')}`,
);
console.log(`pinning: ${machine.pinning}; ${RUNS} run(s) per system and scenario, medians shown`);
// Loopback traffic queues on the kernel's per-CPU backlog: past this many packets it drops (connections: a row).
console.log(`net.core.netdev_max_backlog: ${machine.netdevMaxBacklog}`);

const dir = join(ROOT, 'test/bench/results');
mkdirSync(dir, { recursive: true });
const file = join(dir, QUICK ? 'quick.json' : 'latest.json');
// With --only or --systems, the rows of the previous run that this one does not redo stay (each says when it was measured).
let kept: (Row & { date?: string })[] = [];
if ((ONLY || values.systems) && existsSync(file))
  kept = (JSON.parse(readFileSync(file, 'utf8')) as { rows: (Row & { date?: string })[] }).rows.filter(
    (r) => !want(r.scenario) || !(SYSTEMS as string[]).includes(r.system === 'raw' || r.system === 'H' ? 'P' : r.system),
  );
const save = () => {
  const date = new Date().toISOString();
  const all = [...kept, ...rows.map((r) => ({ ...r, date }))];
  writeFileSync(file, `${JSON.stringify({ date, machine, rows: all }, null, 2)}\n`);
  return all.length;
};

const t0 = performance.now();
for (const [name, fn] of [
  ['fanout', fanout],
  ['patterns', patterns],
  ['publish', publish],
  ['replay', replay],
  ['storm', storm],
  ['idle', idle],
  ['sse', sse],
  ['http', http],
  ['connections', () => connections({ quick: QUICK, systems: SYSTEMS, rows })],
  ['workers', () => workers({ quick: QUICK, systems: SYSTEMS, rows })],
] as const)
  if (want(name)) {
    const started = performance.now();
    await fn();
    save();
    console.log(`(${name}: ${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }
console.log(
  `\n${save()} rows in test/bench/results/${QUICK ? 'quick' : 'latest'}.json (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
);
process.exit(0);
