// The HTTP load of `pnpm bench --only http`: autocannon (an external load generator) driven in this process, which
// the harness pins away from the server. usage: tsx http-load.ts '<json HttpSpec>'; prints one JSON line.
// Per body: a warm-up, the maximum (closed loop: `connections` keep-alive connections, pipelining 1), then the latency
// at half of that maximum (autocannon's `overallRate`). CPU of the server, of Redis and of this process beside each.
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';

export interface HttpSpec {
  url: string;
  serverPid: number;
  /** P's Redis (shares the load's core); none for the bare server */
  redis?: { pid: number; url: string };
  connections: number;
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

export interface HttpResult {
  [body: string]: { max: HttpRun; half: HttpRun & { rate: number } };
}

const spec = JSON.parse(process.argv[2] as string) as HttpSpec;
const ticks = (pid?: number) => {
  if (!pid) return 0;
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return Number(f[11]) + Number(f[12]); // utime + stime, 1/100 s
};
const redis = spec.redis && new Redis(spec.redis.url, { protocol: 2 });
/** EVALSHA calls and their time in Redis so far (µs) */
const scriptCalls = async () => {
  const line = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(((await redis?.info('commandstats')) as string | undefined) ?? '');
  return { calls: Number(line?.[1] ?? 0), us: Number(line?.[2] ?? 0) };
};
const selfUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

async function run(body: string, messages: number, seconds: number, overallRate?: number): Promise<HttpRun> {
  const t0 = performance.now();
  const c0 = await scriptCalls();
  const [s0, r0, l0] = [ticks(spec.serverPid), ticks(spec.redis?.pid), selfUs()];
  // Latencies from each response's own time (autocannon measures it, in fractions of a ms): its histogram keeps whole
  // ms, and with `overallRate` it adds samples for a 1 ms interval that its per-second pacing does not have.
  const lat: number[] = [];
  const r = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: spec.url,
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
  const [s1, r1, l1] = [ticks(spec.serverPid), ticks(spec.redis?.pid), selfUs()];
  const c1 = await scriptCalls();
  const sorted = Float64Array.from(lat).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? Number.NaN;
  // Every request must be answered 200: a refused publish is not a publish.
  if (r.non2xx || r.errors || r.timeouts)
    throw new Error(`${spec.url}: ${r.non2xx} non-2xx answers, ${r.errors} errors, ${r.timeouts} timeouts of ${r.requests.total}`);
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

const out: HttpResult = {};
for (const { name, body, messages } of spec.bodies) {
  await run(body, messages, spec.warmSec);
  const max = await run(body, messages, spec.maxSec);
  const rate = Math.max(1, Math.round(max.reqPerSec / 2));
  out[name] = { max, half: { ...(await run(body, messages, spec.halfSec, rate)), rate } };
}
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(0);
