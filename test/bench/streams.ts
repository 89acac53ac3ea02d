// Benchmark: one message appended over Durable Streams (POST /v1/stream/<json stream>) against one published with
// POST /v1/publish, on the same server and Redis, one message per request, with keep-alive clients.
// usage: pnpm bench:streams [--messages 20000] [--concurrency 32]
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, silentLogger, startApp, startRedis } from '@durable-pubsub/server';

const { values } = parseArgs({
  options: { messages: { type: 'string', default: '20000' }, concurrency: { type: 'string', default: '32' } },
});
const N = Number(values.messages);
const C = Number(values.concurrency);

const dataDir = mkdtempSync(join(tmpdir(), 'dps-bench-streams-'));
const redis = await startRedis({ dataDir, appendonly: false });
const app = await startApp(loadConfig({ PORT: '0', DPS_JANITOR_INTERVAL: '600000' }), { redisUrl: redis.url, log: silentLogger });
const agent = new Agent({ keepAlive: true, maxSockets: C });

/** One POST; resolves with its status once the answer is read. */
function post(url: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Sends `N` requests, `C` at a time; returns messages/s and the latency percentiles in ms. */
async function run(request: (i: number) => { url: string; body: string }): Promise<{ rate: number; p50: number; p99: number }> {
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (next < N) {
        const r = request(next++);
        const t = performance.now();
        const status = await post(r.url, r.body);
        if (status >= 300) throw new Error(`${r.url}: ${status}`);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] as number;
  return { rate: N / seconds, p50: at(0.5), p99: at(0.99) };
}

const data = (i: number) => ({ i, text: 'x'.repeat(100) });
await fetch(`${app.url}/v1/stream/bench.s`, { method: 'PUT', headers: { 'content-type': 'application/json' } });
const rows: [string, Awaited<ReturnType<typeof run>>][] = [];
// Warm-up of both paths, then each measured once.
await run((i) => ({ url: `${app.url}/v1/publish`, body: JSON.stringify({ ch: 'bench.p', data: data(i) }) }));
rows.push([
  'POST /v1/publish',
  await run((i) => ({ url: `${app.url}/v1/publish`, body: JSON.stringify({ ch: 'bench.p', data: data(i) }) })),
]);
rows.push([
  'POST /v1/stream (JSON, mirrored to the channel)',
  await run((i) => ({ url: `${app.url}/v1/stream/bench.s`, body: JSON.stringify(data(i)) })),
]);

console.log(`${N} messages of ~120 bytes, ${C} requests in flight, one message per request`);
console.log('| path | msg/s | p50 ms | p99 ms |');
console.log('|---|---|---|---|');
for (const [name, r] of rows) console.log(`| ${name} | ${Math.round(r.rate)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`);
agent.destroy();
await app.stop();
await redis.kill();
rmSync(dataDir, { recursive: true, force: true });
