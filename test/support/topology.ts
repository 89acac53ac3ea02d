// Multi-process Redis setups on one machine, from the redis-server binary: a Cluster (with replicas) and Sentinel.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, type ManagedRedis, startRedis } from '@durable-pubsub/server';
import { Redis } from 'ioredis';
import { sleep, until } from './env';

export interface RedisNode extends ManagedRedis {
  dataDir: string;
}

async function node(root: string, name: string, extraArgs: string[], appendfsync: 'always' | 'everysec' = 'always'): Promise<RedisNode> {
  const dataDir = join(root, name);
  const r = await startRedis({ dataDir, appendfsync, extraArgs });
  return { ...r, dataDir };
}

/** Runs `fn` on a one-shot connection to the node at `port` (no retries: a dead node fails at once). */
async function onNode<T>(port: number, fn: (c: Redis) => Promise<T>): Promise<T> {
  const c = new Redis({ port, host: '127.0.0.1', protocol: 2, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await c.connect();
    return await fn(c);
  } finally {
    c.disconnect();
  }
}

/** `field:value` lines (INFO, CLUSTER INFO) as a map. */
function fields(text: string): Map<string, string> {
  return new Map(
    text
      .split('\r\n')
      .filter((l) => l.includes(':'))
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)] as [string, string]),
  );
}

/** One INFO section of a node, as a field map. */
export function info(port: number, section: string): Promise<Map<string, string>> {
  return onNode(port, async (c) => fields((await c.info(section)) as string));
}

/** CLUSTER INFO of a node, as a field map. */
export function clusterInfo(port: number): Promise<Map<string, string>> {
  return onNode(port, async (c) => fields((await c.call('CLUSTER', 'INFO')) as string));
}

export interface TestCluster {
  nodes: RedisNode[];
  /** `redis+cluster://…` with every node */
  url: string;
  /** the node serving `slot` as primary now */
  primaryOf(slot: number): Promise<RedisNode>;
  /** the replica of `primary` */
  replicaOf(primary: RedisNode): Promise<RedisNode | undefined>;
  cleanup(): Promise<void>;
}

function clusterNodes(
  port: number,
): Promise<{ id: string; port: number; flags: string[]; master: string; epoch: string; slots: string[] }[]> {
  return onNode(port, async (c) =>
    ((await c.call('CLUSTER', 'NODES')) as string)
      .trim()
      .split('\n')
      .map((line) => {
        const [id, addr, flags, master, , , epoch, , ...slots] = line.split(' ');
        return {
          id: id as string,
          port: Number((addr as string).split(':')[1]?.split('@')[0]),
          flags: (flags as string).split(','),
          master: master as string,
          epoch: epoch as string,
          slots,
        };
      }),
  );
}

/** `masters` primaries with `replicasEach` replicas each, joined with `redis-cli --cluster create`. */
export async function startCluster(masters = 3, replicasEach = 0): Promise<TestCluster> {
  const root = mkdtempSync(join(tmpdir(), 'dps-cluster-'));
  const nodes: RedisNode[] = [];
  for (let i = 0; i < masters * (1 + replicasEach); i++)
    nodes.push(
      // repl-diskless-sync-delay 0: a replica's first full sync starts at once (the default holds it 5 s for others to join).
      await node(root, `n${i}`, [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        'nodes.conf',
        '--cluster-node-timeout',
        '1000',
        '--repl-diskless-sync-delay',
        '0',
      ]),
    );
  const create = spawnSync(
    'redis-cli',
    ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicasEach), '--cluster-yes'],
    { encoding: 'utf8' },
  );
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
  await until(
    async () => {
      for (const n of nodes) {
        const state = await info(n.port, 'cluster').catch(() => null);
        if (!state) return false;
        const ci = await clusterInfo(n.port);
        if (
          ci.get('cluster_state') !== 'ok' ||
          ci.get('cluster_slots_ok') !== '16384' ||
          ci.get('cluster_known_nodes') !== String(nodes.length)
        )
          return false;
      }
      return true;
    },
    30_000,
    'the cluster to be ok on every node',
  );
  // Before anything can be killed: every replica has a live link to its primary, and every node has the same
  // table (who replicates whom, config epochs, slots). A replica that has never completed a sync refuses to fail
  // over for good (its data age counts from "never"); a primary that still takes it for a master refuses it its
  // vote. Counted against what was asked for: redis-cli's CLUSTER REPLICATE is its last step, and a node learns
  // of a role change only from that node's own ping, so one node's table may still list no replica at all.
  if (replicasEach)
    await until(
      async () => {
        const views = await Promise.all(nodes.map((n) => clusterNodes(n.port)));
        const shape = (view: Awaited<ReturnType<typeof clusterNodes>>) =>
          view
            .map((t) => `${t.id} ${t.flags.includes('slave') ? 'slave' : 'master'} ${t.master} ${t.epoch} ${t.slots.join(',')}`)
            .sort()
            .join('\n');
        const agreed = shape(views[0] ?? []);
        if (views.some((v) => shape(v) !== agreed)) return false;
        if ((views[0] ?? []).filter((t) => t.flags.includes('slave')).length !== masters * replicasEach) return false;
        for (const n of nodes) {
          const repl = await info(n.port, 'replication');
          if (repl.get('role') === 'slave' && repl.get('master_link_status') !== 'up') return false;
          if (repl.get('role') === 'master') {
            const online = [...repl].filter(([k, v]) => /^slave\d+$/.test(k) && v.includes('state=online')).length;
            if (online !== replicasEach) return false;
          }
        }
        return true;
      },
      30_000,
      'every replica synced and every node agreeing on the topology',
    );
  const byPort = (port: number) => nodes.find((n) => n.port === port) as RedisNode;
  return {
    nodes,
    url: `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    async primaryOf(slot) {
      for (const n of nodes) {
        if (n.child.exitCode !== null || n.child.signalCode !== null) continue;
        const table = await clusterNodes(n.port).catch(() => null);
        if (!table) continue;
        for (const t of table) {
          if (!t.flags.includes('master') || t.flags.includes('fail')) continue;
          for (const range of t.slots) {
            const [a, b] = range.split('-').map(Number) as [number, number?];
            if (slot >= a && slot <= (b ?? a)) return byPort(t.port);
          }
        }
      }
      throw new Error(`no primary serves slot ${slot}`);
    },
    async replicaOf(primary) {
      const table = await clusterNodes(primary.port);
      const me = table.find((t) => t.flags.includes('myself'));
      const r = table.find((t) => t.master === me?.id);
      return r ? byPort(r.port) : undefined;
    },
    async cleanup() {
      await Promise.all(nodes.map((n) => n.kill()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The ids each channel's sorted set holds on the node at `port` (e.g. a promoted replica: what survived). */
export function storedIds(port: number, channels: string[]): Promise<Map<string, number[]>> {
  return onNode(port, async (r) => {
    const out = new Map<string, number[]>();
    for (const ch of channels)
      out.set(
        ch,
        (await r.zrangebyscore(`dps:{default}:ch:${ch}`, '-inf', '+inf', 'WITHSCORES')).filter((_, i) => i % 2 === 1).map(Number),
      );
    return out;
  });
}

/** Moves `slot` with its keys from the primary at `from` to the one at `to` (CLUSTER SETSLOT … MIGRATE, as resharding does). */
export async function migrateSlot(slot: number, from: number, to: number): Promise<void> {
  const idOf = (port: number) => onNode(port, async (c) => (await c.call('CLUSTER', 'MYID')) as string);
  const [fromId, toId] = [await idOf(from), await idOf(to)];
  await onNode(to, (c) => c.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId));
  await onNode(from, async (c) => {
    await c.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId);
    for (;;) {
      const keys = (await c.call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
      if (!keys.length) break;
      await c.call('MIGRATE', '127.0.0.1', to, '', 0, 5000, 'KEYS', ...keys);
    }
  });
  await onNode(to, (c) => c.call('CLUSTER', 'SETSLOT', slot, 'NODE', toId));
  await onNode(from, (c) => c.call('CLUSTER', 'SETSLOT', slot, 'NODE', toId));
}

/** The hash slot of a key (CRC16 of its hash tag), asked of Redis itself. */
export function keySlot(port: number, key: string): Promise<number> {
  return onNode(port, async (c) => Number(await c.call('CLUSTER', 'KEYSLOT', key)));
}

export interface TestSentinel {
  primary: RedisNode;
  replica: RedisNode;
  sentinels: { port: number; kill(): void }[];
  /** `redis+sentinel://…/mymaster` */
  url: string;
  /** the port the Sentinels name as primary now */
  primaryPort(): Promise<number>;
  cleanup(): Promise<void>;
}

/** A primary, one replica and three Sentinels (quorum 2) that fail over after 1 s of silence. */
export async function startSentinel(): Promise<TestSentinel> {
  const root = mkdtempSync(join(tmpdir(), 'dps-sentinel-'));
  const primary = await node(root, 'primary', []);
  const replica = await node(root, 'replica', ['--replicaof', '127.0.0.1', String(primary.port)]);
  await until(async () => (await info(replica.port, 'replication')).get('master_link_status') === 'up', 20_000, 'the replica to sync');
  const sentinels: { port: number; kill(): void }[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const dir = join(root, `sentinel${i}`);
    spawnSync('mkdir', ['-p', dir]);
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor mymaster 127.0.0.1 ${primary.port} 2`,
        'sentinel down-after-milliseconds mymaster 1000',
        'sentinel failover-timeout mymaster 5000',
        'sentinel parallel-syncs mymaster 1',
        '',
      ].join('\n'),
    );
    const child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    const kill = () => child.kill('SIGKILL');
    process.once('exit', kill);
    sentinels.push({ port, kill });
  }
  const ask = (port: number) =>
    onNode(port, async (c) => {
      const [, p] = (await c.call('SENTINEL', 'get-master-addr-by-name', 'mymaster')) as [string, string];
      const replicas = (await c.call('SENTINEL', 'replicas', 'mymaster')) as unknown[];
      const quorum = String(await c.call('SENTINEL', 'ckquorum', 'mymaster').catch(() => ''));
      return { port: Number(p), replicas: replicas.length, usable: Number(/(\d+) usable/.exec(quorum)?.[1] ?? 0) };
    });
  // Every Sentinel knows the replica and the other Sentinels before anything is killed.
  await until(
    async () => {
      for (const s of sentinels) {
        const a = await ask(s.port).catch(() => null);
        if (a?.replicas !== 1 || a.usable !== 3) return false;
      }
      return true;
    },
    30_000,
    'the Sentinels to know each other and the replica',
  );
  return {
    primary,
    replica,
    sentinels,
    url: `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/mymaster`,
    async primaryPort() {
      return (await ask(sentinels[0]?.port as number)).port;
    },
    async cleanup() {
      for (const s of sentinels) s.kill();
      await Promise.all([primary.kill(), replica.kill()]);
      await sleep(50);
      rmSync(root, { recursive: true, force: true });
    },
  };
}
