// Systems of `pnpm bench` run as several processes (P's `serve --workers`, B's cluster mode), unpinned: start one
// on a fresh Redis, find its processes, and read their memory and CPU from /proc, summed.
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, type ManagedRedis, startRedis } from '@durable-pubsub/server';
import type { System } from './clients';

const ROOT = new URL('../../', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The pids of `root` and of every process below it (a primary and its workers). */
export function processTree(root: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, pp] of parent) if (pp === out[i]) out.push(pid);
  return out;
}

/** Resident memory of these processes, summed, in KB. */
export function rssKb(pids: number[]): number {
  let kb = 0;
  for (const pid of pids)
    try {
      kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {}
  return kb;
}

/**
 * Packets the kernel dropped from its per-CPU input queues since boot (/proc/net/softnet_stat, all CPUs): on loopback
 * every packet a process writes goes through them, and past `net.core.netdev_max_backlog` queued (1,000 by default)
 * the next ones are dropped and wait for TCP's retransmission (200 ms at least, doubling).
 */
export function loopbackDrops(): number {
  try {
    return readFileSync('/proc/net/softnet_stat', 'utf8')
      .trim()
      .split('\n')
      .reduce((a, line) => a + Number.parseInt(line.split(' ')[1] ?? '0', 16), 0);
  } catch {
    return Number.NaN;
  }
}

/** `net.core.netdev_max_backlog`, or NaN where it cannot be read. */
export function netdevBacklog(): number {
  try {
    return Number(readFileSync('/proc/sys/net/core/netdev_max_backlog', 'utf8'));
  } catch {
    return Number.NaN;
  }
}

/** CPU time (user + system) of these processes, summed, in seconds. */
export function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids)
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      ticks += Number(f[11]) + Number(f[12]);
    } catch {}
  return ticks / 100;
}

export interface Multi {
  system: System;
  redis: ManagedRedis;
  child: ChildProcess;
  /** the process started (P's primary when it has workers) and its workers */
  pids: number[];
  base: string;
  stop(): Promise<void>;
}

/**
 * A fresh Redis and a fresh system with `workers` processes sharing one port (P: DPS_WORKERS, B: BARE_WORKERS;
 * S is one process). Resolves once every process serves.
 */
export async function startMulti(system: System, workers: number, env: Record<string, string> = {}): Promise<Multi> {
  const dataDir = mkdtempSync(join(tmpdir(), 'dps-bench-'));
  const redis = await startRedis({ dataDir, appendonly: false });
  const port = await freePort();
  const entry = { P: 'server/src/main.ts', B: 'test/bench/systems/bare.ts', S: 'test/bench/systems/sio.ts' }[system];
  // DPS_BENCH_PROF=<dir>: P and B write a CPU profile there (`node --cpu-prof`; workers inherit it) when they stop.
  const prof = system !== 'S' && process.env.DPS_BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.DPS_BENCH_PROF}`] : [];
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', join(ROOT, entry)], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      REDIS_URL: redis.url,
      DPS_LOG_LEVEL: process.env.DPS_LOG_LEVEL ?? 'error',
      DPS_WORKERS: String(workers),
      BARE_WORKERS: String(workers),
      DPS_MAX_FRAMES_PER_SEC: '10000000',
      DPS_RETENTION_MAX_LEN: '1000000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  // DPS_BENCH_SERVER_LOG=<file>: the system's own log lines (P at DPS_LOG_LEVEL, error unless set) and how it exited.
  const logFile = process.env.DPS_BENCH_SERVER_LOG;
  if (logFile) {
    child.stdout?.on('data', (d) => appendFileSync(logFile, d));
    child.on('exit', (code, signal) => appendFileSync(logFile, `${system} exited: ${code ?? signal}\n`));
  }
  let listening = false;
  child.stdout?.on('data', (d) => {
    if (String(d).includes('listening')) listening = true;
  });
  const until = performance.now() + 60_000;
  for (;;) {
    if (performance.now() > until) throw new Error(`${system} with ${workers} worker(s) did not start`);
    if (child.exitCode !== null) throw new Error(`${system} exited with ${child.exitCode}`);
    if (system !== 'P' ? listening : await servingWorkers(base, workers)) break;
    await sleep(100);
  }
  const pids = processTree(child.pid as number);
  return {
    system,
    redis,
    child,
    pids,
    base,
    async stop() {
      if (prof.length && child.exitCode === null) {
        // A profiled system stops cleanly (the primary stops its workers) so that each profile is written.
        child.kill('SIGTERM');
        await Promise.race([new Promise((r) => child.once('exit', r)), sleep(15_000)]);
      }
      for (const pid of pids.toReversed())
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      await redis.kill();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** P: every worker answers (a primary's /metrics has a `dps_worker_connections` line per serving worker). */
async function servingWorkers(base: string, workers: number): Promise<boolean> {
  const text = await fetch(`${base}/metrics`).then(
    (r) => (r.ok ? r.text() : ''),
    () => '',
  );
  if (!text) return false;
  if (workers === 1) return true;
  return text.split('\n').filter((l) => l.startsWith('dps_worker_connections{')).length >= workers;
}

/** P: open connections over all workers (the `dps_connections` gauge, every state). */
export async function openConnections(base: string): Promise<number> {
  const text = await fetch(`${base}/metrics`).then((r) => r.text());
  let n = 0;
  for (const l of text.split('\n')) if (l.startsWith('dps_connections{')) n += Number(l.slice(l.lastIndexOf(' ') + 1));
  return n;
}
