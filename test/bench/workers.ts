// Scenario `workers` of `pnpm bench`: fan-out (N readers of one pattern, the publish rate ramped) by P with 1 and with
// 2 worker processes, and by B with 1 and 2 processes, in the same run. Reports the maximum delivered and the server
// CPU per delivery (summed over every process of the system: a primary and its workers), and the ratio 2 / 1.
// Nothing is pinned: two workers need both cores, which the load shares, so the comparison is CPU per delivery.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { System } from './clients';
import type { BenchContext } from './connections';
import type { Spec } from './load';
import { startMulti } from './procs';

const ROOT = new URL('../../', import.meta.url).pathname;

interface Step {
  delivered: number;
  cpuUsPerDelivery: number;
  serverCpu: number;
  loadCpu: number;
}

/** Runs load.ts with `spec`; resolves with its JSON result. */
function runLoad(spec: Spec): Promise<{ steps: Step[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/bench/load.ts'), JSON.stringify(spec)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  return new Promise((resolve, reject) =>
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop() as string)) : reject(new Error(`load exited with ${code}`)),
    ),
  );
}

const fmt = (v: number) =>
  !Number.isFinite(v) ? 'n/a' : Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(Math.abs(v) >= 10 ? 1 : 2);

export async function workers(ctx: BenchContext): Promise<void> {
  // 5,000 readers start at 50k deliveries/s: one process's first step at 100k/s was late (every delivery its own write
  // at 20 msg/s), and a ramp whose first step fails leaves no figure.
  const all = ctx.quick
    ? [{ sockets: 100, rates: [500, 2000] }]
    : [
        { sockets: 1000, rates: [100, 200, 400, 700, 1000, 1500, 2000, 3000] },
        { sockets: 5000, rates: [10, 20, 40, 80, 140, 200, 300, 400, 600] },
      ];
  // DPS_BENCH_READERS=5000: some points only (development runs).
  const only = process.env.DPS_BENCH_READERS?.split(',').map(Number);
  const points = only ? all.filter((p) => only.includes(p.sockets)) : all;
  const stepMs = ctx.quick ? 500 : 2000;
  // An unmeasured step at the first rate before the ramp (load.ts), except in --quick (CI time; 100 readers do not need it).
  const warmMs = ctx.quick ? 0 : stepMs;
  // A step goes on to the next if its deliveries arrived within half a step after it: at 5,000 readers one process was
  // late (p50 0.2-0.5 s) with its core half idle, and the rule of deliveries inside the step stopped it at 74k msg/s.
  const graceMs = stepMs / 2;
  const lines: string[][] = [];
  for (const { sockets, rates } of points) {
    // --quick: P alone (CI keeps the harness from rotting; B's 2 processes would add ~10 s).
    for (const system of ctx.systems.filter((s): s is 'P' | 'B' => s === 'P' || (s === 'B' && !ctx.quick))) {
      const best: Step[] = [];
      for (const n of [1, 2]) {
        const sys = await startMulti(system as System, n);
        try {
          const r = await runLoad({
            mode: 'ramp',
            shape: 'fanout',
            system,
            sockets,
            rates,
            stepMs,
            warmMs,
            graceMs,
            base: sys.base,
            redisUrl: sys.redis.url,
            serverPid: sys.pids[0] as number,
            serverPids: sys.pids,
          });
          const b = r.steps.reduce((a, s) => (s.delivered > a.delivered ? s : a));
          // CPU per delivery over every step but the first (which pays each process's JIT warm-up): steadier than
          // the maximum's step alone on a shared machine.
          const steady = r.steps.length > 1 ? r.steps.slice(1) : r.steps;
          const perDelivery = (1e6 * steady.reduce((a, s) => a + s.serverCpu, 0)) / steady.reduce((a, s) => a + s.delivered, 0);
          best.push({ ...b, cpuUsPerDelivery: perDelivery });
          const add = (metric: string, value: number, unit: string) =>
            ctx.rows.push({ scenario: 'workers', system, metric, value, unit, point: sockets, workers: n });
          add(`fan-out ${sockets} readers: max delivered`, b.delivered, 'msg/s');
          add(`fan-out ${sockets} readers: server CPU per delivery at max`, b.cpuUsPerDelivery, 'µs');
          add(`fan-out ${sockets} readers: server CPU per delivery, all steps`, perDelivery, 'µs');
          add(`fan-out ${sockets} readers: server CPU at max`, 100 * b.serverCpu, '%');
          add(`fan-out ${sockets} readers: load CPU at max`, 100 * b.loadCpu, '%');
        } finally {
          await sys.stop();
        }
      }
      const [one, two] = best as [Step, Step];
      const cells = (f: (s: Step) => number) => [fmt(f(one)), fmt(f(two)), fmt(f(two) / f(one))];
      lines.push([`${sockets} readers`, system, 'max delivered (msg/s)', ...cells((s) => s.delivered)]);
      lines.push(['', system, 'server CPU per delivery, all steps (µs)', ...cells((s) => s.cpuUsPerDelivery)]);
      lines.push(['', system, 'server CPU (% of a core)', ...cells((s) => 100 * s.serverCpu)]);
      lines.push(['', system, 'load CPU (% of a core)', ...cells((s) => 100 * s.loadCpu)]);
    }
  }
  console.log('\n10. Workers: fan-out with 1 and 2 server processes (P: serve --workers; B: node:cluster), CPU summed over processes');
  const head = ['readers', 'system', 'metric', '1 process', '2 processes', '2 / 1'];
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const show = (c: string[]) =>
    `  ${c.map((x, i) => (i < 3 ? x.padEnd(widths[i] as number) : x.padStart(widths[i] as number))).join('  ')}`;
  console.log(show(head));
  for (const l of lines) console.log(show(l));
}
