// Benchmark on a real local Redis Cluster: cluster bus messages per durable publish (classic vs sharded pub/sub, 3 and
// 6 shards), and durable publish throughput with one namespace per shard against one shard alone.
// usage: pnpm bench:cluster [--quick] — rows (scenario `cluster`) go to test/bench/results/latest.json (quick.json)
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Store } from '@durable-pubsub/server';
import { commandConnection, connect } from '@durable-pubsub/server/src/redis/connect';
import type { Redis } from 'ioredis';
import { clusterInfo, keySlot, startCluster, type TestCluster } from '../support/topology';

const { values, positionals } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, publisher: { type: 'boolean', default: false } },
  allowPositionals: true,
});
const QUICK = values.quick;
const BUS_PUBLISHES = QUICK ? 200 : 2000;
const THROUGHPUT_MS = QUICK ? 2000 : 8000;
/** publishes each namespace keeps in flight (the store sends those of one turn as one script call) */
const IN_FLIGHT = 1000;

interface Row {
  scenario: 'cluster';
  system: 'P';
  metric: string;
  value: number;
  unit: string;
}
const rows: Row[] = [];
const record = (metric: string, value: number, unit: string) => rows.push({ scenario: 'cluster', system: 'P', metric, value, unit });

const SENT = ['publish_sent', 'publishshard_sent'] as const;

/** Publish messages sent on the cluster bus, summed over the nodes (CLUSTER INFO lists a type once it is not 0). */
async function busSent(c: TestCluster): Promise<number> {
  let sum = 0;
  for (const n of c.nodes) {
    const ci = await clusterInfo(n.port);
    for (const k of SENT) sum += Number(ci.get(`cluster_stats_messages_${k}`) ?? 0);
  }
  return sum;
}

async function storeOn(c: TestCluster, namespace: string): Promise<{ store: Store; redis: Redis }> {
  const redis = commandConnection(c.url);
  await connect(redis);
  const store = new Store(redis, { namespace, retentionMaxLen: 100_000, idempotencyWindowSec: 60 });
  await store.init();
  return { store, redis };
}

/** One namespace name per primary: names whose hash tag lands on each. */
async function namespacePerShard(c: TestCluster, shards: number): Promise<string[]> {
  const byPrimary = new Map<number, string>();
  for (let i = 0; byPrimary.size < shards; i++) {
    const ns = `bench${i}`;
    const primary = await c.primaryOf(await keySlot(c.nodes[0]?.port as number, `dps:{${ns}}:seq`));
    if (!byPrimary.has(primary.port)) byPrimary.set(primary.port, ns);
  }
  return [...byPrimary.values()];
}

async function busPerPublish(shards: number): Promise<void> {
  const c = await startCluster(shards);
  try {
    for (const mode of ['classic', 'sharded'] as const) {
      const { store, redis } = await storeOn(c, `bus-${mode}`);
      await store.pubsub.switch(mode);
      const before = await busSent(c);
      for (let i = 0; i < BUS_PUBLISHES; i += 100)
        await Promise.all(Array.from({ length: Math.min(100, BUS_PUBLISHES - i) }, (_, j) => store.publish(`b.${j % 7}`, i + j)));
      const per = ((await busSent(c)) - before) / BUS_PUBLISHES;
      record(`cluster bus publish messages sent per durable publish, ${mode}, ${shards} shards`, Number(per.toFixed(2)), 'msg');
      redis.disconnect();
    }
  } finally {
    await c.cleanup();
  }
}

/** `--publisher <url> <namespace> <ms>`: one namespace's publisher process; prints its msg/s. */
async function publisherProcess(url: string, namespace: string, ms: number): Promise<void> {
  const { store, redis } = await storeOn({ url } as TestCluster, namespace);
  let done = 0;
  let stop = false;
  const pad = 'x'.repeat(80);
  const lane = async () => {
    for (let n = 0; !stop; n++) {
      await store.publish(`t.${n % 4}`, pad);
      done++;
    }
  };
  const t0 = performance.now();
  const lanes = Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  await new Promise((r) => setTimeout(r, ms));
  stop = true;
  const rate = done / ((performance.now() - t0) / 1000);
  await lanes;
  redis.disconnect();
  process.stdout.write(`${rate}\n`);
}

/** Each namespace's publisher in its own process, all at once, for THROUGHPUT_MS: total msg/s. */
async function throughput(url: string, names: string[]): Promise<number> {
  const rates = await Promise.all(
    names.map(
      (ns) =>
        new Promise<number>((resolve, reject) => {
          const self = new URL(import.meta.url).pathname;
          const child = spawn(process.execPath, ['--import', 'tsx', self, '--publisher', url, ns, String(THROUGHPUT_MS)], {
            stdio: ['ignore', 'pipe', 'inherit'],
          });
          let out = '';
          child.stdout.on('data', (d) => {
            out += d;
          });
          child.on('exit', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`publisher ${ns} exited with ${code}`))));
        }),
    ),
  );
  return rates.reduce((a, b) => a + b, 0);
}

async function aggregate(): Promise<{ one: number; three: number }> {
  const c = await startCluster(3);
  try {
    const names = await namespacePerShard(c, 3);
    for (const ns of names) {
      const { store, redis } = await storeOn(c, ns);
      await store.pubsub.switch('sharded');
      redis.disconnect();
    }
    const one = await throughput(c.url, names.slice(0, 1));
    const three = await throughput(c.url, names);
    return { one, three };
  } finally {
    await c.cleanup();
  }
}

if (values.publisher) {
  const [url, ns, ms] = positionals as [string, string, string];
  await publisherProcess(url, ns, Number(ms));
  process.exit(0);
}

console.log(
  `cluster bench (${QUICK ? 'quick' : 'full'}): ${BUS_PUBLISHES} publishes per bus measurement, ${THROUGHPUT_MS} ms per throughput run`,
);
for (const shards of [3, 6]) await busPerPublish(shards);
const { one, three } = await aggregate();
record('durable publish, one namespace on one shard (3-shard Cluster)', Math.round(one), 'msg/s');
record('durable publish, one namespace per shard (3 namespaces, 3 shards, total)', Math.round(three), 'msg/s');
record('one namespace per shard / one shard alone', Number((three / one).toFixed(2)), 'x');

const width = Math.max(...rows.map((r) => r.metric.length));
console.log(`\n${'metric'.padEnd(width)}  ${'value'.padStart(10)}  unit`);
for (const r of rows) console.log(`${r.metric.padEnd(width)}  ${String(r.value).padStart(10)}  ${r.unit}`);
console.log(
  '\n(a publisher process per namespace, 1,000 publishes in flight each; on a machine with fewer cores than Redis nodes plus publishers the ratio is bounded by the cores)',
);

const dir = new URL('./results/', import.meta.url).pathname;
mkdirSync(dir, { recursive: true });
const file = join(dir, QUICK ? 'quick.json' : 'latest.json');
const date = new Date().toISOString();
const kept = existsSync(file)
  ? (JSON.parse(readFileSync(file, 'utf8')) as { rows: Row[] }).rows.filter((r) => r.scenario !== 'cluster')
  : [];
const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
writeFileSync(file, `${JSON.stringify({ ...previous, date, rows: [...kept, ...rows.map((r) => ({ ...r, date }))] }, null, 2)}\n`);
console.log(`\n${rows.length} cluster rows in test/bench/results/${QUICK ? 'quick' : 'latest'}.json`);
process.exit(0);
