// The HTTP load of `pnpm bench --only http`: autocannon (an external load generator) driven in this process, which
// the harness pins away from the servers. usage: tsx http-load.ts '<json HttpSpec>'; prints one JSON line.
// Per body: a warm-up of each target, then `cycles` rounds of the maximum of each target in turn (closed loop:
// `connections` keep-alive connections, pipelining 1), then the latency at half of each one's maximum (autocannon's
// `overallRate`). Targets that share a Redis (P with `appendfsync always`, then `everysec`) have it switched with
// CONFIG SET before each run. CPU of the server, of Redis and of this process beside each.
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';

export type Fsync = 'always' | 'everysec';

export interface HttpTarget {
  /** the column: `P always`, `P everysec`, `H` */
  name: string;
  url: string;
  serverPid: number;
  /** P's Redis (shares the load's core); none for the bare server */
  redis?: { pid: number; url: string };
  /** set on that Redis (CONFIG SET appendfsync) before each run of this target */
  fsync?: Fsync;
}

export interface HttpSpec {
  targets: HttpTarget[];
  connections: number;
  cycles: number;
  warmSec: number;
  maxSec: number;
  halfSec: number;
  bodies: { name: string; body: string; messages: number }[];
}

export interface HttpRun {
  /** requests answered 200 per second */
  reqPerSec: number;
  msgPerSec: number;
  p50: number;
  p99: number;
  /** share of one core over the run */
  serverCpu: number;
  redisCpu: number;
  loadCpu: number;
  /** P: messages per script call (EVALSHA) of its store, and Redis's own time per call (INFO commandstats) */
  perCall?: number;
  redisUsPerCall?: number;
}

/** per body: the maximum of every target, cycle by cycle, and each one's latency at half of its median maximum */
export interface HttpResult {
  [body: string]: { cycles: Record<string, HttpRun>[]; half: Record<string, HttpRun & { rate: number }> };
}

const spec = JSON.parse(process.argv[2] as string) as HttpSpec;
const ticks = (pid?: number) => {
  if (!pid) return 0;
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return Number(f[11]) + Number(f[12]); // utime + stime, 1/100 s
};
/** one client per Redis of the targets */
const clients = new Map<string, Redis>();
const redisOf = (t: HttpTarget) => {
  if (!t.redis) return undefined;
  let c = clients.get(t.redis.url);
  if (!c) clients.set(t.redis.url, (c = new Redis(t.redis.url, { protocol: 2 })));
  return c;
};
/** EVALSHA calls and their time in Redis so far (µs) */
const scriptCalls = async (t: HttpTarget) => {
  const line = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(((await redisOf(t)?.info('commandstats')) as string | undefined) ?? '');
  return { calls: Number(line?.[1] ?? 0), us: Number(line?.[2] ?? 0) };
};
const selfUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

async function run(t: HttpTarget, body: string, messages: number, seconds: number, overallRate?: number): Promise<HttpRun> {
  const redis = redisOf(t);
  if (t.fsync) await redis?.config('SET', 'appendfsync', t.fsync);
  const t0 = performance.now();
  const c0 = await scriptCalls(t);
  const [s0, r0, l0] = [ticks(t.serverPid), ticks(t.redis?.pid), selfUs()];
  // Latencies from each response's own time (autocannon measures it, in fractions of a ms): its histogram keeps whole
  // ms, and with `overallRate` it adds samples for a 1 ms interval that its per-second pacing does not have.
  const lat: number[] = [];
  const r = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: t.url,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        connections: spec.connections,
        pipelining: 1,
        duration: seconds,
        ...(overallRate && { overallRate }),
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
    instance.on('response', (_client, status, _bytes, ms) => {
      if (status === 200) lat.push(ms);
    });
  });
  const sec = (performance.now() - t0) / 1000;
  const [s1, r1, l1] = [ticks(t.serverPid), ticks(t.redis?.pid), selfUs()];
  const c1 = await scriptCalls(t);
  const sorted = Float64Array.from(lat).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? Number.NaN;
  // Every request must be answered 200: a refused publish is not a publish.
  if (r.non2xx || r.errors || r.timeouts)
    throw new Error(`${t.name} ${t.url}: ${r.non2xx} non-2xx answers, ${r.errors} errors, ${r.timeouts} timeouts of ${r.requests.total}`);
  const ok = r['2xx'];
  return {
    reqPerSec: ok / r.duration,
    msgPerSec: (ok * messages) / r.duration,
    p50: at(0.5),
    p99: at(0.99),
    serverCpu: (s1 - s0) / 100 / sec,
    redisCpu: (r1 - r0) / 100 / sec,
    loadCpu: (l1 - l0) / 1e6 / sec,
    ...(redis && { perCall: (ok * messages) / (c1.calls - c0.calls), redisUsPerCall: (c1.us - c0.us) / (c1.calls - c0.calls) }),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const out: HttpResult = {};
for (const { name, body, messages } of spec.bodies) {
  for (const t of spec.targets) await run(t, body, messages, spec.warmSec);
  // The targets in turn, cycle after cycle: a slow minute of the shared machine falls on all of them, not on one.
  const cycles: Record<string, HttpRun>[] = [];
  for (let c = 0; c < spec.cycles; c++) {
    const cycle: Record<string, HttpRun> = {};
    for (const t of spec.targets) cycle[t.name] = await run(t, body, messages, spec.maxSec);
    cycles.push(cycle);
  }
  const half: Record<string, HttpRun & { rate: number }> = {};
  for (const t of spec.targets) {
    const rate = Math.max(1, Math.round(median(cycles.map((c) => (c[t.name] as HttpRun).reqPerSec)) / 2));
    half[t.name] = { ...(await run(t, body, messages, spec.halfSec, rate)), rate };
  }
  out[name] = { cycles, half };
}
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(0);
