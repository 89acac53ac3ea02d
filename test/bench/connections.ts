// Scenario `connections` of `pnpm bench`: 10k, 50k and 100k connections held by P (workers as the 20,000-file limit
// needs), B (the bare bridge, as many processes) and S (Socket.IO: one process, so only up to its file limit). Per
// point: connections held, settled RSS per connection (all processes), the connect storm's accept rate, broadcasts to
// every socket (p50/p99/max arrival), a reconnect storm with 10 missed messages each, and the CPU of server and load.
import { type ChildProcess, fork } from 'node:child_process';
import type { System } from './clients';
import { publisher } from './clients';
import type { ConnCommand, ConnLoadSpec, ConnReply } from './conn-load';
import { cpuSeconds, loopbackDrops, type Multi, openConnections, rssKb, startMulti } from './procs';

export interface BenchRow {
  scenario: string;
  system: System | 'raw' | 'H';
  metric: string;
  value: number;
  unit: string;
  point?: number;
  workers?: number;
}

export interface BenchContext {
  quick: boolean;
  systems: System[];
  rows: BenchRow[];
}

/** a process may hold 20,000 files (hard limit): 15,000 connections per server or load process leaves room */
const PER_PROCESS = 15_000;
const S_LIMIT = 18_000;
const MISSED = 10;
/** the RSS is read as settled this long after the connect storm (see point()) */
const SETTLED_MS = Number(process.env.DPS_BENCH_SETTLED_MS ?? 120_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LOAD = new URL('./conn-load.ts', import.meta.url).pathname;

/** The load processes of a point, each on its own source address, driven together. */
class Loads {
  /** per process: answers not yet taken, and those waiting for one */
  private readonly inbox: ConnReply[][] = [];
  private readonly waiting: ((m: ConnReply | Error) => void)[][] = [];

  constructor(
    system: System,
    base: string,
    n: number,
    readonly procs: ChildProcess[] = [],
  ) {
    const count = Math.ceil(n / PER_PROCESS);
    for (let k = 0; k < count; k++) {
      const from = Math.floor((k * n) / count);
      const spec: ConnLoadSpec = {
        system,
        base,
        from,
        count: Math.floor(((k + 1) * n) / count) - from,
        localAddress: `127.0.0.${2 + k}`,
        resumeAddress: `127.0.1.${2 + k}`,
        parallel: system === 'S' ? 200 : 500,
      };
      const p = fork(LOAD, [JSON.stringify(spec)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const inbox: ConnReply[] = [];
      const waiting: ((m: ConnReply | Error) => void)[] = [];
      p.on('message', (m: ConnReply) => {
        const w = waiting.shift();
        if (w) w(m);
        else inbox.push(m);
      });
      // A load process that dies fails the point instead of leaving the harness waiting for its answer.
      p.on('exit', (code, signal) => {
        if (signal !== 'SIGKILL') for (const w of waiting.splice(0)) w(new Error(`a load process exited (${code ?? signal})`));
      });
      procs.push(p);
      this.inbox.push(inbox);
      this.waiting.push(waiting);
    }
  }

  get pids(): number[] {
    return this.procs.map((p) => p.pid as number);
  }

  /** Each process's next answer. */
  next<T extends ConnReply>(): Promise<T[]> {
    return Promise.all(
      this.procs.map(
        (_, k) =>
          new Promise<T>((resolve, reject) => {
            const m = this.inbox[k]?.shift();
            if (m) resolve(m as T);
            else if (this.procs[k]?.exitCode !== null) reject(new Error('a load process exited'));
            else this.waiting[k]?.push((r) => (r instanceof Error ? reject(r) : resolve(r as T)));
          }),
      ),
    );
  }

  /** Sends `cmd` to every load process; resolves with each one's answer. */
  ask<T extends ConnReply>(cmd: ConnCommand): Promise<T[]> {
    for (const p of this.procs) p.send(cmd);
    return this.next<T>();
  }

  stop(): void {
    for (const p of this.procs) p.kill('SIGKILL');
  }
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
const median = (xs: number[]) => xs.toSorted((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? Number.NaN;

interface PointResult {
  workers: number;
  held: number;
  /** settled (SETTLED_MS after the storm) */
  rssPerConnKb: number;
  /** 5 s after the storm */
  rssAfterStormKb: number;
  rssTotalMb: number;
  acceptRate: number;
  p50: number;
  p99: number;
  max: number;
  missingBroadcast: number;
  reconnectMs: number;
  reconnected: number;
  missedDelivered: number;
  missedExpected: number;
  outOfOrder: number;
  closedByServer: number;
  /** those closes per close code (1006: no close frame, e.g. terminated by the heartbeat) */
  closeCodes: Record<string, number>;
  /** per phase; drops: packets the kernel dropped meanwhile (loopbackDrops: the machine's, not only this point's) */
  cpu: Record<'connect' | 'broadcast' | 'reconnect', { server: number; load: number; seconds: number; drops: number }>;
}

/** One system at one point: start it, storm it, measure, stop it. */
async function point(system: System, n: number, quick: boolean): Promise<PointResult> {
  const workers = system === 'S' ? 1 : Math.max(1, Math.ceil(n / PER_PROCESS));
  const sys = await startMulti(system, workers);
  const loads = new Loads(system, sys.base, n);
  try {
    const settle = quick ? 1000 : 5000;
    await loads.next(); // every load process is up
    await sleep(settle);
    const rss0 = rssKb(sys.pids);
    const phase = async (fn: () => Promise<void>) => {
      const s0 = cpuSeconds(sys.pids);
      const l0 = cpuSeconds(loads.pids);
      const d0 = loopbackDrops();
      const t0 = performance.now();
      await fn();
      return {
        server: cpuSeconds(sys.pids) - s0,
        load: cpuSeconds(loads.pids) - l0,
        seconds: (performance.now() - t0) / 1000,
        drops: loopbackDrops() - d0,
      };
    };

    let opened: Extract<ConnReply, { cmd: 'opened' }>[] = [];
    const connect = await phase(async () => {
      opened = await loads.ask({ cmd: 'open' });
    });
    const held = opened.reduce((a, o) => a + o.held, 0);
    const acceptRate = held / ((Math.max(...opened.map((o) => o.last)) - Math.min(...opened.map((o) => o.first))) / 1000);

    await sleep(settle);
    const rss1 = rssKb(sys.pids);
    // Settled: V8 keeps the storm's garbage and a young generation grown to 32 MB per process until its memory reducer
    // runs, once a process has allocated little for a while (30-40 s after the storm for one process at 10k; at 50k and
    // 100k not in every process within the minute; the heap spaces in `mem-probe.ts`'s PROBE_TRACE). What is left at
    // SETTLED_MS is the figure; the first reading (`settle` after the storm: 5 s, 1 s with --quick) is kept beside it.
    const trace = [rss1];
    for (let t = settle; t < (quick ? settle : SETTLED_MS); t += 5000) {
      await sleep(5000);
      trace.push(rssKb(sys.pids));
    }
    const rssSettled = trace[trace.length - 1] as number;
    console.log(
      `  ${system} ${n}: RSS per connection every 5 s after the storm (KB): ${trace.map((r) => ((r - rss0) / held).toFixed(2)).join(' ')}`,
    );

    const pub = await publisher(system, sys.base, sys.redis.url);
    const p50s: number[] = [];
    const p99s: number[] = [];
    const maxes: number[] = [];
    let missingBroadcast = 0;
    const broadcast = await phase(async () => {
      for (let b = 0; b < (quick ? 1 : 4); b++) {
        // Every load process is armed before the publish; then each answers with its sockets' arrivals.
        await loads.ask({ cmd: 'arm' });
        await pub.publish([{ ch: system === 'S' ? 'conn' : 'conn.x', data: { t: performance.timeOrigin + performance.now(), pad: '' } }]);
        const arrived = await loads.next<Extract<ConnReply, { cmd: 'arrived' }>>();
        const all = arrived.flatMap((a) => a.lat).sort((x, y) => x - y);
        missingBroadcast += arrived.reduce((a, x) => a + x.missing, 0);
        p50s.push(pct(all, 0.5));
        p99s.push(pct(all, 0.99));
        maxes.push(all[all.length - 1] ?? Number.NaN);
        await sleep(500);
      }
    });

    let resumed: Extract<ConnReply, { cmd: 'resumed' }>[] = [];
    let reconnectMs = 0;
    const reconnect = await phase(async () => {
      const dropped = await loads.ask<Extract<ConnReply, { cmd: 'dropped' }>>({ cmd: 'drop' });
      // P: the server has seen every socket go before the messages they miss are published (else some are sent
      // live to a socket already closing: not the storm's work). B stores nothing; S reconnects on its own timer.
      const until = performance.now() + 30_000;
      if (system === 'P') while ((await openConnections(sys.base)) > 0 && performance.now() < until) await sleep(100);
      if (system === 'B') await sleep(1000);
      const batch = Array.from({ length: MISSED }, () => ({
        ch: system === 'S' ? 'conn' : 'conn.x',
        data: { t: performance.timeOrigin + performance.now(), pad: '' },
      }));
      await pub.publish(batch);
      resumed = await loads.ask({ cmd: 'resume', missed: MISSED });
      const first = system === 'S' ? Math.min(...dropped.map((d) => d.at)) + 2000 : Math.min(...resumed.map((r) => r.first));
      reconnectMs = Math.max(...resumed.map((r) => r.last)) - first;
    });
    pub.close();
    return {
      workers,
      held,
      rssPerConnKb: (rssSettled - rss0) / held,
      rssAfterStormKb: (rss1 - rss0) / held,
      rssTotalMb: rssSettled / 1024,
      acceptRate,
      p50: median(p50s),
      p99: median(p99s),
      max: median(maxes),
      missingBroadcast,
      reconnectMs,
      reconnected: resumed.reduce((a, r) => a + r.live, 0),
      missedDelivered: system === 'B' ? Number.NaN : resumed.reduce((a, r) => a + r.got, 0),
      missedExpected: system === 'B' ? Number.NaN : held * MISSED,
      outOfOrder: system === 'P' ? resumed.reduce((a, r) => a + r.bad, 0) : Number.NaN,
      closedByServer: resumed.reduce((a, r) => a + r.closed, 0),
      closeCodes: sumCodes(resumed.map((r) => r.codes)),
      cpu: { connect, broadcast, reconnect },
    };
  } finally {
    loads.stop();
    await sys.stop();
  }
}

/** Close codes counted by each load process, summed. */
function sumCodes(all: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const codes of all) for (const [code, n] of Object.entries(codes)) out[code] = (out[code] ?? 0) + n;
  return out;
}

const fmt = (v: number) =>
  !Number.isFinite(v) ? 'n/a' : Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(Math.abs(v) >= 10 ? 1 : 2);

export async function connections(ctx: BenchContext): Promise<void> {
  // DPS_BENCH_POINTS=10000,50000: other points (development runs: 100k takes the whole machine).
  const points = process.env.DPS_BENCH_POINTS?.split(',').map(Number) ?? (ctx.quick ? [300] : [10_000, 50_000, 100_000]);
  for (const n of points) {
    const results = new Map<System, PointResult>();
    for (const system of ctx.systems) {
      // S is one process: past its file limit it cannot hold the point at all.
      if (system === 'S' && n > S_LIMIT) continue;
      const r = await point(system, n, ctx.quick);
      results.set(system, r);
      const add = (metric: string, value: number, unit: string) =>
        ctx.rows.push({ scenario: 'connections', system, metric, value, unit, point: n, workers: r.workers });
      add('connections held', r.held, 'connections');
      add('server RSS per connection', r.rssPerConnKb, 'KB');
      add('server RSS per connection, 5 s after the storm', r.rssAfterStormKb, 'KB');
      add('server RSS total', r.rssTotalMb, 'MB');
      add('accept rate', r.acceptRate, 'connections/s');
      add('broadcast p50', r.p50, 'ms');
      add('broadcast p99', r.p99, 'ms');
      add('broadcast max', r.max, 'ms');
      add('broadcast arrivals missing', r.missingBroadcast, 'deliveries');
      add('reconnect storm: all live and caught up', r.reconnectMs, 'ms');
      add('reconnect storm: connections back', r.reconnected, 'connections');
      add('connections closed by the server', r.closedByServer, 'connections');
      // Which codes: 1006 (no close frame: the heartbeat terminated a silent peer), 4508 (slow consumer), 4408 (no
      // hello in time), 1001 (the server could not serve it)... (PROTOCOL.md's close codes).
      for (const [code, count] of Object.entries(r.closeCodes).sort())
        add(`connections closed by the server, code ${code}`, count, 'connections');
      add('reconnect storm: missed messages delivered', r.missedDelivered, 'msgs');
      add('reconnect storm: missed messages expected', r.missedExpected, 'msgs');
      add('reconnect storm: out of order or duplicate', r.outOfOrder, 'msgs');
      for (const ph of ['connect', 'broadcast', 'reconnect'] as const) {
        add(`server CPU, ${ph}`, r.cpu[ph].server, 'CPU s');
        add(`load CPU, ${ph}`, r.cpu[ph].load, 'CPU s');
        add(`wall time, ${ph}`, r.cpu[ph].seconds, 's');
        add(`packets the kernel dropped, ${ph}`, r.cpu[ph].drops, 'packets');
      }
      // Each system's column as soon as it is measured (a point of 100k takes minutes per system).
      if (system !== ctx.systems.at(-1)) printPoint(ctx, n, results);
    }
    printPoint(ctx, n, results);
  }
}

function printPoint(ctx: BenchContext, n: number, results: Map<System, PointResult>): void {
  const mine = ctx.rows.filter((r) => r.scenario === 'connections' && r.point === n);
  const metrics = [...new Set(mine.map((r) => r.metric))];
  const get = (m: string, s: System) => mine.find((r) => r.metric === m && r.system === s)?.value ?? Number.NaN;
  const procs = ['P', 'B', 'S'].map((s) => `${s} ${results.get(s as System)?.workers ?? '-'}`).join(', ');
  console.log(
    `\n9. Connections: ${n.toLocaleString('en-US')} (server processes: ${procs}; S is one process and stops at its file limit, 20,000)`,
  );
  const head = ['metric', 'unit', 'P', 'B', 'S', 'P/B', 'P/S'];
  const lines = metrics.map((m) => {
    const unit = mine.find((r) => r.metric === m)?.unit ?? '';
    const [p, b, s] = (['P', 'B', 'S'] as const).map((x) => get(m, x)) as [number, number, number];
    return [m, unit, fmt(p), fmt(b), fmt(s), fmt(p / b), fmt(p / s)];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const show = (cells: string[]) =>
    `  ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ')}`;
  console.log(show(head));
  for (const l of lines) console.log(show(l));
}

export type { Multi };
