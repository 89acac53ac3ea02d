// Benchmark: write-to-client latency at a steady rate, rows committed into the PostgreSQL outbox against POST /v1/publish.
// usage: pnpm bench:outbox [--rate 1000] [--seconds 5] [--writers 4] [--channels 10]
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { durablePubsub, startRedis } from '@durable-pubsub/server';
import pg from 'pg';
import WebSocket from 'ws';
import { startTestPostgres } from '../support/postgres';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '5' },
    writers: { type: 'string', default: '4' },
    channels: { type: 'string', default: '10' },
  },
});
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const WRITERS = Number(values.writers);
const CHANNELS = Number(values.channels);
const TICK_MS = 10;

interface Sample {
  start: number;
  /** the write answered: COMMIT returned / the publish answered */
  done?: number;
  received?: number;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};

/** Writes RATE items a second for SECONDS, `write(n)` each; resolves once every one has reached the client. */
async function run(
  all: Map<string, Sample>,
  samples: Map<string, Sample>,
  prefix: string,
  write: (tag: string) => Promise<void>,
): Promise<void> {
  const total = RATE * SECONDS;
  const perTick = (RATE * TICK_MS) / 1000;
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  for (let n = 0; n < total; ) {
    // Paced by the clock, not by the answers: a slow write does not lower the rate.
    const due = Math.min(total, Math.floor(((performance.now() - t0) / TICK_MS + 1) * perTick));
    for (; n < due; n++) {
      const tag = `${prefix}${n}`;
      const s: Sample = { start: performance.now() };
      samples.set(tag, s);
      all.set(tag, s);
      pending.push(
        write(tag).then(() => {
          s.done = performance.now();
        }),
      );
    }
    await new Promise((r) => setTimeout(r, TICK_MS));
  }
  await Promise.all(pending);
  const end = Date.now() + 30_000;
  while ([...samples.values()].some((s) => s.received === undefined)) {
    if (Date.now() > end)
      throw new Error(
        `not everything arrived within 30 s: ${[...samples.values()].filter((s) => s.received === undefined).length} missing`,
      );
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'dps-bench-outbox-'));
  const [db, redis] = await Promise.all([startTestPostgres(), startRedis({ dataDir, appendonly: false })]);
  const dps = await durablePubsub({ redisUrl: redis.url, outboxUrl: db.url, log: 'silent' });
  const { url } = await dps.listen();
  await new Promise<void>((resolve) => {
    const wait = () => (dps.outbox?.state === 'relaying' ? resolve() : setTimeout(wait, 20));
    wait();
  });
  const samples = new Map<string, Sample>();
  const ws = new WebSocket(`${url.replace('http', 'ws')}/ws`, { perMessageDeflate: false });
  await new Promise((r) => ws.once('open', r));
  ws.on('message', (raw) => {
    const now = performance.now();
    const f = JSON.parse(String(raw));
    if (f.op !== 'msg') return;
    const s = samples.get(f.data.tag);
    if (s) s.received = now;
  });
  ws.send(JSON.stringify({ op: 'hello', v: 1, recipient: 'bench-outbox', subs: ['bench.*'] }));
  await new Promise<void>((resolve) => ws.once('message', () => resolve()));

  // As a backend writes: a pool of WRITERS connections, a request waiting for a free one.
  const writers = new pg.Pool({ connectionString: db.url, max: WRITERS });
  const outbox = new Map<string, Sample>();
  await run(samples, outbox, 'o', async (tag) => {
    // One transaction a row (autocommit), as an app writes one change and its event.
    await writers.query('INSERT INTO dps_outbox (channel, data) VALUES ($1, $2)', [
      `bench.outbox.${Number(tag.slice(1)) % CHANNELS}`,
      { tag },
    ]);
  });
  const direct = new Map<string, Sample>();
  // As a backend calls it: a keep-alive pool (fetch opens a connection per request in flight here, and runs out).
  const agent = new Agent({ keepAlive: true, maxSockets: WRITERS });
  await run(
    samples,
    direct,
    'p',
    (tag) =>
      new Promise<void>((resolve, reject) => {
        const body = JSON.stringify({ ch: `bench.publish.${Number(tag.slice(1)) % CHANNELS}`, data: { tag } });
        const req = request(`${url}/v1/publish`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`publish: ${res.statusCode}`))));
        });
        req.on('error', reject);
        req.end(body);
      }),
  );
  agent.destroy();

  const rows: [string, number[]][] = [];
  const lat = (m: Map<string, Sample>, from: 'start' | 'done') =>
    [...m.values()].map((s) => (s.received as number) - (from === 'start' ? s.start : (s.done ?? s.start)));
  rows.push(['outbox: INSERT sent → client', lat(outbox, 'start')]);
  rows.push(['outbox: COMMIT returned → client', lat(outbox, 'done')]);
  rows.push(['POST /v1/publish sent → client', lat(direct, 'start')]);
  rows.push(['POST /v1/publish answered → client', lat(direct, 'done')]);
  console.log(
    `\ncommit to client at ${RATE} writes/s for ${SECONDS} s (${WRITERS} connections, ${CHANNELS} channels; one process, indicative)`,
  );
  console.log(`  ${'path'.padEnd(38)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'max ms'.padStart(8)}`);
  for (const [name, xs] of rows)
    console.log(
      `  ${name.padEnd(38)} ${pct(xs, 50).toFixed(1).padStart(8)} ${pct(xs, 99).toFixed(1).padStart(8)} ${Math.max(...xs)
        .toFixed(1)
        .padStart(8)}`,
    );
  console.log(`  relay: ${JSON.stringify(dps.outbox?.stats)}`);

  ws.close();
  await writers.end();
  await dps.close();
  await redis.stop();
  await db.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
