// Benchmark: what positions per (recipient, pattern set) cost Redis: a janitor pass and memory with 10,000 recipients
// with 1 set each (the baseline), 3 sets each that all share (views), and 3 sets each of their own (per-user patterns).
// usage: pnpm bench:sets [--recipients 10000] [--passes 5]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { patternSetKey } from '@durable-pubsub/client-sdk/protocol';
import { loadConfig, Store, silentLogger, startRedis } from '@durable-pubsub/server';
import { Janitor } from '@durable-pubsub/server/src/janitor';
import { commandConnection, connect } from '@durable-pubsub/server/src/redis/connect';

const { values } = parseArgs({ options: { recipients: { type: 'string', default: '10000' }, passes: { type: 'string', default: '5' } } });
const R = Number(values.recipients);
const PASSES = Number(values.passes);
const CHANNELS = 100;

type Case = { name: string; sets: (i: number) => string[][]; channel: (c: number) => string };
const CASES: Case[] = [
  { name: '1 set each (baseline)', sets: () => [['news.*']], channel: (c) => `news.${c}` },
  {
    name: '3 shared sets each',
    sets: () => [['news.*'], ['orders.*'], ['news.*', 'orders.*']],
    channel: (c) => (c % 2 ? `news.${c}` : `orders.${c}`),
  },
  {
    name: '3 sets of its own each',
    sets: (i) => [[`u.${i}.a`], [`u.${i}.b`], [`u.${i}.*`]],
    channel: (c) => `u.${c}.${c % 2 ? 'a' : 'b'}`,
  },
];

const info = async (cmd: ReturnType<typeof commandConnection>, section: string, field: string) =>
  Number(new RegExp(`${field}:([\\d.]+)`).exec((await cmd.info(section)) as string)?.[1] ?? 0);

async function run(c: Case): Promise<Record<string, string>> {
  const dataDir = mkdtempSync(join(tmpdir(), 'dps-sets-'));
  const redis = await startRedis({ dataDir, appendonly: false });
  const cmd = commandConnection(redis.url);
  await connect(cmd);
  try {
    const store = new Store(cmd, { namespace: 'default', retentionMaxLen: 100_000, idempotencyWindowSec: 60 });
    await store.init();
    const mem0 = await info(cmd, 'memory', 'used_memory');
    for (let i = 0; i < R; i += 500) {
      const jobs: Promise<unknown>[] = [];
      for (let j = i; j < Math.min(R, i + 500); j++)
        for (const s of c.sets(j)) jobs.push(store.hello(`r${j}`, patternSetKey(s), { from: 'earliest' }));
      await Promise.all(jobs);
    }
    const mem1 = await info(cmd, 'memory', 'used_memory');
    const ids: number[] = [];
    for (let n = 0; n < 10; n++)
      ids.push(...(await Promise.all(Array.from({ length: CHANNELS }, (_, ch) => store.publish(c.channel(ch), n)))).map((r) => r.id));
    // Everyone acks half: every pass has something to trim and every floor matters.
    const half = ids[ids.length / 2] as number;
    for (let i = 0; i < R; i += 500) {
      const jobs: Promise<unknown>[] = [];
      for (let j = i; j < Math.min(R, i + 500); j++)
        for (const s of c.sets(j)) jobs.push(store.ack(`r${j}`, patternSetKey(s), half, store.epoch));
      await Promise.all(jobs);
    }
    const janitor = new Janitor(store, loadConfig({}, { janitorIntervalMs: 600_000 }), silentLogger, () => new Set());
    const redisCpu = async () => (await info(cmd, 'cpu', 'used_cpu_user')) + (await info(cmd, 'cpu', 'used_cpu_sys'));
    // The first pass reads every floor and matches every set against every channel; the next ones read what changed.
    const f0 = performance.now();
    let trimmed = (await janitor.runOnce(true))?.ackTrimmed ?? 0;
    const first = performance.now() - f0;
    // Between passes, 1% of the positions move (their sets' floors may change), as acks do.
    const walls: number[] = [];
    let cpu = 0;
    for (let p = 0; p < PASSES; p++) {
      const jobs: Promise<unknown>[] = [];
      for (let j = p; j < R; j += 100)
        for (const s of c.sets(j)) jobs.push(store.ack(`r${j}`, patternSetKey(s), half + 1 + p, store.epoch));
      await Promise.all(jobs);
      const cpu0 = await redisCpu();
      const t0 = performance.now();
      const report = await janitor.runOnce(true);
      walls.push(performance.now() - t0);
      cpu += (await redisCpu()) - cpu0;
      trimmed += report?.ackTrimmed ?? 0;
    }
    const floors = await cmd.zcard(store.keys.floors);
    walls.sort((a, b) => a - b);
    return {
      case: c.name,
      'pattern sets': String(floors),
      'positions MB': ((mem1 - mem0) / 1e6).toFixed(1),
      'B / position': String(Math.round((mem1 - mem0) / (R * c.sets(0).length))),
      'first pass ms': first.toFixed(0),
      'pass ms (median)': (walls[walls.length >> 1] as number).toFixed(1),
      'Redis CPU ms / pass': ((cpu * 1000) / PASSES).toFixed(1),
      trimmed: String(trimmed),
    };
  } finally {
    cmd.disconnect();
    await redis.kill();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const rows: Record<string, string>[] = [];
for (const c of CASES) rows.push(await run(c));
const cols = Object.keys(rows[0] as object);
const width = cols.map((k) => Math.max(k.length, ...rows.map((r) => (r[k] as string).length)));
console.log(`\npositions per (recipient, pattern set): ${R} recipients, ${CHANNELS} channels, ${PASSES} janitor passes`);
for (const line of [Object.fromEntries(cols.map((k) => [k, k])), ...rows])
  console.log(
    `  ${cols.map((k, i) => (i ? (line[k] as string).padStart(width[i] as number) : (line[k] as string).padEnd(width[i] as number))).join('  ')}`,
  );
