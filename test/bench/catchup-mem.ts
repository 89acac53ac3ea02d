// Where a catch-up's memory goes: the server in this process (run with --expose-gc), readers in a load process;
// heap, external and RSS sampled during the replay, and what stays after a full GC.
// usage: node --expose-gc --import tsx test/bench/catchup-mem.ts [--readers 100] [--messages 100000]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, loadConfig, Store, silentLogger, startApp, startRedis } from '@durable-pubsub/server';
import { commandConnection, connect } from '@durable-pubsub/server/src/redis/connect';

const { values } = parseArgs({
  options: {
    readers: { type: 'string', default: '100' },
    messages: { type: 'string', default: '100000' },
    'heap-sites': { type: 'boolean', default: false },
  },
});
const READERS = Number(values.readers);
const N = Number(values.messages);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const mb = (b: number) => (b / 2 ** 20).toFixed(1);

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'dps-mem-'));
  const redis = await startRedis({ dataDir, appendonly: false });
  const cmd = commandConnection(redis.url);
  await connect(cmd);
  const store = new Store(cmd, { namespace: 'default', retentionMaxLen: 10_000_000, idempotencyWindowSec: 60 });
  await store.init();
  const pad = 'x'.repeat(80);
  for (let i = 0; i < N; i += 2000)
    await Promise.all(Array.from({ length: Math.min(2000, N - i) }, (_, j) => store.publish(`rep.${(i + j) % 4}`, pad)));
  cmd.disconnect();
  const port = await freePort();
  const app = await startApp(
    loadConfig({ ...process.env, PORT: String(port), DPS_RETENTION_MAX_LEN: String(N + 1), DPS_MAX_FRAMES_PER_SEC: '10000000' }),
    { redisUrl: redis.url, log: silentLogger },
  );
  gc();
  await new Promise((r) => setTimeout(r, 300));
  gc();
  const m0 = process.memoryUsage();
  const peak = { rss: m0.rss, heapUsed: m0.heapUsed, external: m0.external, arrayBuffers: m0.arrayBuffers };
  // --heap-sites: where the memory that outlives the young generation was allocated (promoted, collected by a full GC).
  const inspector = values['heap-sites'] ? new Session() : undefined;
  if (inspector) {
    inspector.connect();
    await inspector.post('HeapProfiler.startSampling', { samplingInterval: 8192, includeObjectsCollectedByMajorGC: true });
  }
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    for (const k of Object.keys(peak) as (keyof typeof peak)[]) peak[k] = Math.max(peak[k], m[k]);
  }, 20);
  const spec = {
    mode: 'replay',
    system: 'P',
    sockets: READERS,
    messages: N,
    serverPid: process.pid,
    redisUrl: redis.url,
    base: `http://127.0.0.1:${port}`,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'load.ts'), JSON.stringify(spec)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await new Promise((r) => child.once('exit', r));
  clearInterval(sampler);
  if (inspector) {
    type Node = { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: Node[] };
    const { profile } = (await inspector.post('HeapProfiler.stopSampling')) as { profile: { head: Node } };
    const sites = new Map<string, number>();
    const walk = (n: Node, path: string[]) => {
      const f = n.callFrame;
      const here = [...path, `${f.functionName || '(anon)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`].slice(-3);
      if (n.selfSize) sites.set(here.join(' < '), (sites.get(here.join(' < ')) ?? 0) + n.selfSize);
      for (const c of n.children) walk(c, here);
    };
    walk(profile.head, []);
    for (const [site, size] of [...sites].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${mb(size).padStart(8)} MB  ${site}`);
  }
  const r = JSON.parse(out.trim().split('\n').pop() as string);
  gc();
  const m1 = process.memoryUsage();
  console.log(
    `${READERS} readers x ${N}: ${r.msgPerSec} msg/s total, ${r.seconds.toFixed(1)} s | peak growth: rss ${mb(peak.rss - m0.rss)} MB (${((peak.rss - m0.rss) / 1024 / READERS).toFixed(0)} KB/reader), heapUsed ${mb(peak.heapUsed - m0.heapUsed)}, external ${mb(peak.external - m0.external)}, arrayBuffers ${mb(peak.arrayBuffers - m0.arrayBuffers)} | after gc: rss +${mb(m1.rss - m0.rss)}, heap +${mb(m1.heapUsed - m0.heapUsed)}, ext +${mb(m1.external - m0.external)}`,
  );
  await app.stop();
  await redis.kill();
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(0);
}
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
