// Benchmark: replay of a large backlog to one client — rate and server memory, against a raw Redis read in the same run.
// usage: pnpm bench:replay [--messages 100000] [--channels 4] [--size 100]
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, keysFor, Store, startRedis } from '@durable-pubsub/server';
import { commandConnection, connect } from '@durable-pubsub/server/src/redis/connect';
import WebSocket from 'ws';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '100000' },
    channels: { type: 'string', default: '4' },
    size: { type: 'string', default: '100' },
  },
});
const N = Number(values.messages);
const CHANNELS = Number(values.channels);
const SIZE = Number(values.size);
const MAIN = new URL('../../server/src/main.ts', import.meta.url).pathname;

const kb = (pid: number, field: 'VmRSS' | 'VmHWM') =>
  Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'dps-bench-'));
  const redis = await startRedis({ dataDir, appendonly: false });
  const cmd = commandConnection(redis.url);
  await connect(cmd);
  const store = new Store(cmd, { namespace: 'default', retentionMaxLen: 10_000_000, idempotencyWindowSec: 60 });
  await store.init();

  process.stdout.write(`filling a backlog of ${N} messages (${SIZE} B of data, ${CHANNELS} channels)… `);
  const payload = 'x'.repeat(SIZE);
  const t0 = performance.now();
  for (let i = 0; i < N; i += 2000) {
    const jobs: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(N, i + 2000); j++) jobs.push(store.publish(`bench.${j % CHANNELS}`, payload));
    await Promise.all(jobs);
  }
  const fillSec = (performance.now() - t0) / 1000;
  process.stdout.write(`${Math.round(N / fillSec)} publishes/s\n`);

  // Baseline: the same frames read straight from Redis, page by page, merged by nothing (one channel at a time).
  const k = keysFor('default');
  const b0 = performance.now();
  let raw = 0;
  for (let c = 0; c < CHANNELS; c++) {
    let after = 0;
    for (;;) {
      const page = await cmd.zrangebyscore(k.channel(`bench.${c}`), `(${after}`, '+inf', 'WITHSCORES', 'LIMIT', 0, 1000);
      if (!page.length) break;
      raw += page.length / 2;
      after = Number(page[page.length - 1]);
    }
  }
  const rawRate = raw / ((performance.now() - b0) / 1000);

  const port = await freePort();
  // `node --import tsx` (not the tsx CLI, which runs the script in a child of its own): this pid is the server.
  const server: ChildProcess = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env: {
      ...process.env,
      PORT: String(port),
      REDIS_URL: redis.url,
      DPS_LOG_LEVEL: 'error',
      DPS_RETENTION_MAX_LEN: String(N + 1),
      DPS_WORKERS: '1', // its pid's RSS is what is measured
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const pid = server.pid as number;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const rssBefore = kb(pid, 'VmRSS');
  let peak = rssBefore;
  const sampler = setInterval(() => {
    peak = Math.max(peak, kb(pid, 'VmRSS'));
  }, 10);

  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { perMessageDeflate: false });
  let count = 0;
  let last = 0;
  let ordered = true;
  let gaps = 0;
  const r0 = performance.now();
  const replaySec = await new Promise<number>((resolve) => {
    ws.on('open', () => ws.send(JSON.stringify({ op: 'hello', v: 1, recipient: 'bench', subs: ['bench.*'], from: 'earliest' })));
    ws.on('message', (data) => {
      const s = data.toString();
      if (s.startsWith('{"op":"msg"')) {
        const id = Number(/"id":(\d+)/.exec(s)?.[1]);
        if (id <= last) ordered = false;
        last = id;
        count++;
      } else if (s.startsWith('{"op":"gap"')) gaps++;
      else if (s.startsWith('{"op":"live"')) resolve((performance.now() - r0) / 1000);
    });
  });
  clearInterval(sampler);
  // The kernel's own peak since the process started (includes start-up), beside the sampled peak during replay.
  const hwm = kb(pid, 'VmHWM');
  ws.close();
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  cmd.disconnect();
  await redis.kill();
  rmSync(dataDir, { recursive: true, force: true });

  const rate = count / replaySec;
  const rows: [string, string, string][] = [
    [
      'backlog replayed to one client',
      `${count} msgs`,
      count === N && ordered && !gaps ? 'complete, in order' : `INCOMPLETE (${gaps} gaps)`,
    ],
    ['replay (server → WebSocket client)', `${Math.round(rate)} msg/s`, `${replaySec.toFixed(2)} s`],
    ['baseline: raw ZRANGEBYSCORE read', `${Math.round(rawRate)} msg/s`, 'same Redis, same process tree'],
    ['ratio replay / raw read', (rate / rawRate).toFixed(2), ''],
    [
      'server RSS before → sampled peak',
      `${(rssBefore / 1024).toFixed(1)} → ${(peak / 1024).toFixed(1)} MB`,
      `growth ${((peak - rssBefore) / 1024).toFixed(1)} MB (VmHWM ${(hwm / 1024).toFixed(1)} MB)`,
    ],
  ];
  console.log(`\nreplay benchmark (node ${process.version}, ${N} messages of ${SIZE} B on ${CHANNELS} channels)`);
  for (const [a, b, c] of rows) console.log(`  ${a.padEnd(38)} ${b.padStart(18)}   ${c}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
