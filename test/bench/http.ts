// Scenario `http` of `pnpm bench`: P's POST /v1/publish under autocannon (test/bench/http-load.ts) against H, a bare
// node:http JSON server (test/bench/systems/bare-http.ts), with P's Redis append-only at fsync always and everysec.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { HttpResult, HttpSpec } from './http-load';

export type Fsync = 'always' | 'everysec';

/** A system started by the harness: its pid, its URL, its Redis. */
interface Served {
  pid: number;
  base: string;
  redis: { url: string; child: { pid?: number } };
}

/** What the harness lends the scenario. */
export interface HttpBench {
  quick: boolean;
  root: string;
  pin(cpu: number, cmd: string[]): string[];
  /** how many times each system runs (the median is shown) */
  rounds: number;
  /** one fresh start of `system` (its Redis append-only with `fsync`, else without persistence) */
  once<T>(system: 'P' | 'H', fn: (sys: Served) => Promise<T>, env?: Record<string, string>, fsync?: Fsync): Promise<T>;
  median(xs: number[]): number;
  fmt(v: number): string;
  record(system: 'P' | 'H', metric: string, value: number, unit: string, fsync?: Fsync): void;
}

/** Runs autocannon (test/bench/http-load.ts, pinned with Redis) against `sys`; resolves with its JSON line. */
function httpLoad(
  ctx: HttpBench,
  spec: Omit<HttpSpec, 'url' | 'serverPid' | 'redis'>,
  sys: Served,
  withRedis: boolean,
): Promise<HttpResult> {
  const full: HttpSpec = {
    ...spec,
    url: `${sys.base}/v1/publish`,
    serverPid: sys.pid,
    ...(withRedis && { redis: { pid: sys.redis.child.pid as number, url: sys.redis.url } }),
  };
  const cmd = ctx.pin(1, [process.execPath, '--import', 'tsx', join(ctx.root, 'test/bench/http-load.ts'), JSON.stringify(full)]);
  const child = spawn(cmd[0] as string, cmd.slice(1), { cwd: ctx.root, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  return new Promise((resolve, reject) =>
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop() as string)) : reject(new Error(`http load exited with ${code}`)),
    ),
  );
}

/**
 * 8. HTTP publishing under an external load generator (autocannon: 64 keep-alive connections, pipelining 1): P's
 * POST /v1/publish, with Redis append-only at `appendfsync always` and at `everysec`, against H (a bare node:http
 * server that only parses and checks the JSON) in the same run. Per body: the maximum, then p50/p99 at half of it.
 */
export async function httpScenario(ctx: HttpBench): Promise<void> {
  const { median, fmt } = ctx;
  const pad = 'x'.repeat(60);
  const BATCH = 100;
  const bodies = [
    { name: 'single', body: JSON.stringify({ ch: 'dur.y', data: { t: 0, pad } }), messages: 1 },
    {
      name: `batch of ${BATCH}`,
      body: JSON.stringify({ messages: Array.from({ length: BATCH }, () => ({ ch: 'dur.x', data: { t: 0, pad } })) }),
      messages: BATCH,
    },
  ];
  const spec = {
    connections: 64,
    bodies,
    ...(ctx.quick ? { warmSec: 0.5, maxSec: 1, halfSec: 1 } : { warmSec: 2, maxSec: 5, halfSec: 5 }),
  };
  const all = [
    { col: 'P always', system: 'P', fsync: 'always' },
    { col: 'P everysec', system: 'P', fsync: 'everysec' },
    { col: 'H', system: 'H' },
  ] as const;
  // --quick keeps the code from rotting: P once (fsync is Redis's setting, not another path of P's).
  const systems = ctx.quick ? all.filter((s) => s.col !== 'P always') : all;
  type Cell = Record<string, number>;
  /** body name → metric → column → value */
  const cells = new Map<string, Map<string, { unit: string; v: Cell }>>();
  const put = (body: string, metric: string, unit: string, col: string, v: number) => {
    const m = cells.get(body) ?? new Map();
    cells.set(body, m);
    const line = m.get(metric) ?? { unit, v: {} };
    m.set(metric, line);
    line.v[col] = v;
  };
  // Rounds of every system in turn, not each system's runs together: a shared machine's slow minutes then fall on all
  // of them, not on one (the ratios are what this scenario is for).
  const results = systems.map(() => [] as HttpResult[]);
  for (let r = 0; r < ctx.rounds; r++)
    for (const [i, s] of systems.entries()) {
      // The bench's Redis is P's REDIS_URL, so DPS_REDIS_FSYNC (the managed Redis's setting) is set on it at its start.
      const fsync = 'fsync' in s ? s.fsync : undefined;
      results[i]?.push(await ctx.once(s.system, (sys) => httpLoad(ctx, spec, sys, s.system === 'P'), {}, fsync));
    }
  for (const [i, s] of systems.entries()) {
    const fsync = 'fsync' in s ? s.fsync : undefined;
    const runs = results[i] as HttpResult[];
    for (const { name } of bodies) {
      const at = (f: (r: HttpResult[string]) => number) => median(runs.map((r) => f(r[name] as HttpResult[string])));
      const half = at((r) => r.half.rate);
      const lines: [string, string, number][] = [
        ['max requests', 'req/s', at((r) => r.max.reqPerSec)],
        ['max messages', 'msg/s', at((r) => r.max.msgPerSec)],
        ['p50 latency at max', 'ms', at((r) => r.max.p50)],
        ['p99 latency at max', 'ms', at((r) => r.max.p99)],
        ['server CPU at max', '%', at((r) => 100 * r.max.serverCpu)],
        // What the shared machine cannot take away: the server's CPU time per message (its core may not be its own).
        ['server CPU per message at max', 'µs', at((r) => (1e6 * r.max.serverCpu) / r.max.msgPerSec)],
        ['load CPU at max', '%', at((r) => 100 * r.max.loadCpu)],
        ['Redis CPU at max', '%', at((r) => 100 * r.max.redisCpu)],
        ['messages per script call at max', 'msgs', at((r) => r.max.perCall ?? Number.NaN)],
        ['Redis time per script call at max', 'µs', at((r) => r.max.redisUsPerCall ?? Number.NaN)],
        ['half rate', 'req/s', half],
        ['p50 latency at half rate', 'ms', at((r) => r.half.p50)],
        ['p99 latency at half rate', 'ms', at((r) => r.half.p99)],
        ['server CPU at half rate', '%', at((r) => 100 * r.half.serverCpu)],
        ['load CPU at half rate', '%', at((r) => 100 * r.half.loadCpu)],
      ];
      for (const [metric, unit, v] of lines) {
        if (s.system === 'H' && (metric.startsWith('Redis') || metric.includes('script'))) continue;
        ctx.record(s.system, `HTTP ${name}: ${metric}`, v, unit, fsync);
        put(name, metric, unit, s.col, v);
      }
    }
  }
  console.log(
    `\n8. HTTP publishing, autocannon (64 connections, pipelining 1; ~100 B messages): P's POST /v1/publish (Redis append-only, appendfsync always / everysec) against H, a bare node:http JSON server (CPU: % of a core)`,
  );
  const head = ['body', 'metric', 'unit', 'P always', 'P everysec', 'H', 'P/H always', 'P/H everysec'];
  const table: string[][] = [];
  for (const [body, m] of cells)
    for (const [metric, { unit, v }] of m) {
      const ratio = (!metric.includes('CPU') || metric.includes('per message')) && !metric.startsWith('half') && 'H' in v;
      const [a, e, h] = [v['P always'], v['P everysec'], v.H].map((x) => x ?? Number.NaN) as [number, number, number];
      const first = metric === 'max requests';
      table.push([first ? body : '', metric, unit, fmt(a), fmt(e), fmt(h), ratio ? fmt(a / h) : '', ratio ? fmt(e / h) : '']);
    }
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((c) => (c[i] as string).length)));
  const show = (c: string[]) =>
    `  ${c.map((x, i) => (i < 3 ? x.padEnd(widths[i] as number) : x.padStart(widths[i] as number))).join('  ')}`;
  console.log(show(head));
  for (const c of table) console.log(show(c));
}
