// Scenario `http` of `pnpm bench`: P's POST /v1/publish under autocannon (test/bench/http-load.ts) against H, a bare
// node:http JSON server (test/bench/systems/bare-http.ts), with P's Redis append-only at fsync always and everysec.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Fsync, HttpResult, HttpRun, HttpSpec, HttpTarget } from './http-load';

export type { Fsync } from './http-load';

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
  /** how many cycles of every system in turn (the median is shown) */
  rounds: number;
  /** one fresh start of `system` (its Redis append-only with `fsync`, else without persistence) */
  once<T>(system: 'P' | 'H', fn: (sys: Served) => Promise<T>, env?: Record<string, string>, fsync?: Fsync): Promise<T>;
  median(xs: number[]): number;
  fmt(v: number): string;
  record(system: 'P' | 'H', metric: string, value: number, unit: string, fsync?: Fsync): void;
}

/** Runs autocannon (test/bench/http-load.ts, pinned with Redis) against the targets; resolves with its JSON line. */
function httpLoad(ctx: HttpBench, spec: HttpSpec): Promise<HttpResult> {
  const cmd = ctx.pin(1, [process.execPath, '--import', 'tsx', join(ctx.root, 'test/bench/http-load.ts'), JSON.stringify(spec)]);
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
 * server that only parses and checks the JSON). P and H run side by side (both pinned to CPU 0, one loaded at a
 * time) and the load takes P always, P everysec and H in turn, a few seconds each, cycle after cycle: this machine's
 * speed moved by up to 2× between minutes (H alone 20,000–39,000 requests/s), so the ratio is taken within each
 * cycle. Per body: the maxima, then p50/p99 at half of each one's.
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
    connections: Number(process.env.DPS_BENCH_HTTP_CONNECTIONS ?? 64),
    bodies,
    ...(ctx.quick ? { warmSec: 0.5, maxSec: 1, halfSec: 1 } : { warmSec: 2, maxSec: 5, halfSec: 5 }),
  };
  const cols = [
    { col: 'P always', system: 'P', fsync: 'always' },
    { col: 'P everysec', system: 'P', fsync: 'everysec' },
    { col: 'H', system: 'H' },
  ] as const;
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
  /** body and column → P/H of the maxima within a cycle, median over cycles */
  const sameCycle = new Map<string, number>();
  /** the same, each cycle's, printed under the table */
  const perCycle: string[] = [];
  // P's Redis starts with `always`; the load switches it before each of P's runs (CONFIG SET appendfsync).
  const result = await ctx.once(
    'P',
    (p) =>
      ctx.once('H', (h) => {
        const targets: HttpTarget[] = cols.map((c) =>
          c.system === 'P'
            ? {
                name: c.col,
                url: `${p.base}/v1/publish`,
                serverPid: p.pid,
                redis: { pid: p.redis.child.pid as number, url: p.redis.url },
                fsync: c.fsync,
              }
            : { name: c.col, url: `${h.base}/v1/publish`, serverPid: h.pid },
        );
        return httpLoad(ctx, { ...spec, targets, cycles: ctx.rounds });
      }),
    {},
    'always',
  );
  for (const c of cols) {
    const fsync = 'fsync' in c ? c.fsync : undefined;
    for (const { name } of bodies) {
      const { cycles, half: halves } = result[name] as HttpResult[string];
      const at = (f: (r: HttpRun) => number) => median(cycles.map((cy) => f(cy[c.col] as HttpRun)));
      const half = halves[c.col] as HttpRun & { rate: number };
      const lines: [string, string, number][] = [
        ['max requests', 'req/s', at((r) => r.reqPerSec)],
        ['max messages', 'msg/s', at((r) => r.msgPerSec)],
        ['p50 latency at max', 'ms', at((r) => r.p50)],
        ['p99 latency at max', 'ms', at((r) => r.p99)],
        ['server CPU at max', '%', at((r) => 100 * r.serverCpu)],
        // What the shared machine cannot take away: the server's CPU time per message (its core may not be its own).
        ['server CPU per message at max', 'µs', at((r) => (1e6 * r.serverCpu) / r.msgPerSec)],
        ['load CPU at max', '%', at((r) => 100 * r.loadCpu)],
        ['Redis CPU at max', '%', at((r) => 100 * r.redisCpu)],
        ['messages per script call at max', 'msgs', at((r) => r.perCall ?? Number.NaN)],
        ['Redis time per script call at max', 'µs', at((r) => r.redisUsPerCall ?? Number.NaN)],
        ['half rate', 'req/s', half.rate],
        ['p50 latency at half rate', 'ms', half.p50],
        ['p99 latency at half rate', 'ms', half.p99],
        ['server CPU at half rate', '%', 100 * half.serverCpu],
        ['load CPU at half rate', '%', 100 * half.loadCpu],
      ];
      // The ratio to H within each cycle (the same minute of the machine), median over the cycles: the table's P/H of
      // the maxima (the other ratios are of the medians).
      if (c.system === 'P') {
        const ratios = cycles.map((cy) => (cy[c.col] as HttpRun).reqPerSec / (cy.H as HttpRun).reqPerSec);
        const same = median(ratios);
        ctx.record('P', `HTTP ${name}: max requests per H request, same cycle`, same, '×', fsync);
        sameCycle.set(`${name} ${c.col}`, same);
        perCycle.push(`${name}, ${c.col}: ${ratios.map((r) => r.toFixed(2)).join(' ')}`);
      }
      for (const [metric, unit, v] of lines) {
        if (c.system === 'H' && (metric.startsWith('Redis') || metric.includes('script'))) continue;
        ctx.record(c.system, `HTTP ${name}: ${metric}`, v, unit, fsync);
        put(name, metric, unit, c.col, v);
      }
    }
  }
  console.log(
    `\n8. HTTP publishing, autocannon (${spec.connections} connections, pipelining 1; ~100 B messages): P's POST /v1/publish (Redis append-only, appendfsync always / everysec) against H, a bare node:http JSON server, in turn ${ctx.rounds}× (medians; P/H of the maxima within each turn; CPU: % of a core)`,
  );
  const head = ['body', 'metric', 'unit', 'P always', 'P everysec', 'H', 'P/H always', 'P/H everysec'];
  const table: string[][] = [];
  for (const [body, m] of cells)
    for (const [metric, { unit, v }] of m) {
      const ratio = (!metric.includes('CPU') || metric.includes('per message')) && !metric.startsWith('half') && 'H' in v;
      const [a, e, h] = [v['P always'], v['P everysec'], v.H].map((x) => x ?? Number.NaN) as [number, number, number];
      const first = metric === 'max requests';
      // The maxima's ratios are taken within each cycle (sameCycle); the others are ratios of the medians.
      const [ra, re] = /^max (requests|messages)$/.test(metric)
        ? [sameCycle.get(`${body} P always`), sameCycle.get(`${body} P everysec`)]
        : [a / h, e / h];
      table.push([
        first ? body : '',
        metric,
        unit,
        fmt(a),
        fmt(e),
        fmt(h),
        ratio ? fmt(ra ?? Number.NaN) : '',
        ratio ? fmt(re ?? Number.NaN) : '',
      ]);
    }
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((c) => (c[i] as string).length)));
  const show = (c: string[]) =>
    `  ${c.map((x, i) => (i < 3 ? x.padEnd(widths[i] as number) : x.padStart(widths[i] as number))).join('  ')}`;
  console.log(show(head));
  for (const c of table) console.log(show(c));
  console.log(`  P/H of the maxima, cycle by cycle: ${perCycle.join('; ')}`);
}
