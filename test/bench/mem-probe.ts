// Memory of idle connections, for development (not part of pnpm bench): N connections (a hello with one pattern, as
// the connections scenario's load) to one process of P or B; prints the RSS per connection 8 s after the storm.
// `snapshot`: each server process then writes a heap snapshot into the repository's root (compare object counts and
// sizes of P's and B's). PROBE_NODE_OPTIONS: the server's NODE_OPTIONS (V8 flags); PROBE_LOG=<file>: its log lines;
// PROBE_STOP_MS: the server is then stopped (SIGSTOP) that long and resumed, and its open connections counted.
// usage: tsx test/bench/mem-probe.ts P|B 10000 [snapshot]
import { fork } from 'node:child_process';
import type { System } from './clients';
import type { ConnLoadSpec, ConnReply } from './conn-load';
import { openConnections, rssKb, startMulti } from './procs';

const system = (process.argv[2] ?? 'P') as System;
const n = Number(process.argv[3] ?? 10000);
const snapshot = process.argv[4] === 'snapshot';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LOAD = new URL('./conn-load.ts', import.meta.url).pathname;

const nodeOptions = [snapshot ? '--heapsnapshot-signal=SIGUSR2' : '', process.env.PROBE_NODE_OPTIONS ?? ''].join(' ').trim();
const sys = await startMulti(system, 1, nodeOptions ? { NODE_OPTIONS: nodeOptions } : {});
// The server's log lines (errors only) and any crash: PROBE_LOG=<file>
if (process.env.PROBE_LOG) {
  const { appendFileSync } = await import('node:fs');
  const file = process.env.PROBE_LOG;
  sys.child.stdout?.on('data', (d) => appendFileSync(file, d));
  sys.child.on('exit', (code, signal) => appendFileSync(file, `server exited ${code} ${signal}\n`));
}
const spec: ConnLoadSpec = {
  system,
  base: sys.base,
  from: 0,
  count: n,
  localAddress: '127.0.0.2',
  resumeAddress: '127.0.1.2',
  parallel: 500,
};
const p = fork(LOAD, [JSON.stringify(spec)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const replies: ConnReply[] = [];
let wake = () => {};
p.on('message', (m: ConnReply) => {
  replies.push(m);
  wake();
});
const next = async () => {
  while (!replies.length) await new Promise<void>((r) => (wake = r));
  return replies.shift() as ConnReply;
};
try {
  await next();
  await sleep(5000);
  const rss0 = rssKb(sys.pids);
  p.send({ cmd: 'open' });
  const opened = (await next()) as Extract<ConnReply, { cmd: 'opened' }>;
  await sleep(8000);
  const rss1 = rssKb(sys.pids);
  console.log(
    JSON.stringify({
      system,
      n,
      held: opened.held,
      failed: opened.failed,
      closed: opened.closed,
      rss0,
      rss1,
      kbPerConn: +((rss1 - rss0) / opened.held).toFixed(3),
    }),
  );
  // PROBE_TRACE=1: every 5 s for PROBE_TRACE_MS (a minute), the RSS and V8's heap spaces (the server's /metrics);
  // PROBE_TRACE=rss: the RSS alone (reading /metrics allocates in the server, which delays V8's memory reducer).
  if (process.env.PROBE_TRACE) {
    for (let k = 1; k <= Number(process.env.PROBE_TRACE_MS ?? 60_000) / 5000; k++) {
      await sleep(5000);
      if (process.env.PROBE_TRACE === 'rss') {
        console.log(`+${8 + 5 * k}s rss/conn ${((rssKb(sys.pids) - rss0) / opened.held).toFixed(2)} KB`);
        continue;
      }
      const text = await (await fetch(`${sys.base}/metrics`)).text();
      const spaces = [...text.matchAll(/^nodejs_heap_space_size_total_bytes\{space="(\w+)"\S*\} (\d+)/gm)]
        .map((m) => `${m[1]}=${(Number(m[2]) / 1048576).toFixed(1)}`)
        .join(' ');
      const used = /^nodejs_heap_size_used_bytes\S* (\d+)/m.exec(text)?.[1];
      console.log(
        `+${8 + 5 * k}s rss/conn ${((rssKb(sys.pids) - rss0) / opened.held).toFixed(2)} KB heapUsed ${(Number(used) / 1048576).toFixed(1)} MB total: ${spaces}`,
      );
    }
  }
  // PROBE_STOP_MS: the server is stopped (SIGSTOP) this long, as a starved machine would hold it, then resumed.
  const stopMs = Number(process.env.PROBE_STOP_MS ?? 0);
  if (stopMs) {
    const before = await openConnections(sys.base);
    for (const pid of sys.pids) process.kill(pid, 'SIGSTOP');
    await sleep(stopMs);
    for (const pid of sys.pids) process.kill(pid, 'SIGCONT');
    await sleep(4000);
    console.log(JSON.stringify({ stoppedMs: stopMs, openBefore: before, openAfter: await openConnections(sys.base) }));
  }
  if (snapshot) {
    for (const pid of sys.pids) process.kill(pid, 'SIGUSR2');
    await sleep(20000);
  }
} finally {
  p.kill('SIGKILL');
  await sys.stop();
}
