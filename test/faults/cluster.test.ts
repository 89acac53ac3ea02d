// A local Redis Cluster from redis-server binaries: namespaces on different shards, live pattern
// delivery across nodes, sharded pub/sub kept off the cluster bus, and a primary killed with its replica
// promoted (clients are told, not skipped).
import { afterEach, describe, expect, it } from 'vitest';
import { httpPublish, sleep, startTestServer, type TestServer, until } from '../support/env';
import { RawClient } from '../support/raw-client';
import { allLive, mergeFailures, type Recorder, record, steadyPublisher } from '../support/recorder';
import { clusterInfo, info, keySlot, migrateSlot, startCluster, storedIds, type TestCluster } from '../support/topology';

/** PUBSUB … asked of one node (shard channels are per shard: each node answers for its own). */
async function pubsubOn(port: number, ...args: string[]): Promise<unknown> {
  const { Redis } = await import('ioredis');
  const r = new Redis({ port, host: '127.0.0.1', protocol: 2 });
  try {
    return await r.call('PUBSUB', ...args);
  } finally {
    r.disconnect();
  }
}

const BUS = ['publish_sent', 'publish_received', 'publishshard_sent', 'publishshard_received'] as const;
type Bus = Record<(typeof BUS)[number], number>;

/** The cluster bus's publish messages, summed over the nodes (CLUSTER INFO lists a type only once it is not 0). */
async function busCounters(c: TestCluster): Promise<Bus> {
  const sum = Object.fromEntries(BUS.map((k) => [k, 0])) as Bus;
  for (const n of c.nodes) {
    const ci = await clusterInfo(n.port);
    for (const k of BUS) sum[k] += Number(ci.get(`cluster_stats_messages_${k}`) ?? 0);
  }
  return sum;
}

let cluster: TestCluster | undefined;
let servers: TestServer[] = [];
let clients: Recorder[] = [];
let publishers: ReturnType<typeof steadyPublisher>[] = [];
afterEach(async () => {
  // A test that failed before stop(): its publishers would retry an unstored message forever (SIGTERM waits for it).
  for (const p of publishers) p.child.kill('SIGKILL');
  await Promise.allSettled(publishers.map((p) => p.stop()));
  publishers = [];
  for (const c of clients) c.client.close();
  clients = [];
  await Promise.all(servers.map((s) => s.stop()));
  servers = [];
  await cluster?.cleanup();
  cluster = undefined;
});

describe('Redis Cluster', () => {
  it('three namespaces on three shards: each node holds one namespace, replay and live delivery work across nodes', async () => {
    cluster = await startCluster(3);
    const c = cluster;
    // One namespace per primary: names whose hash tag lands on each.
    const byPrimary = new Map<number, string>();
    for (let i = 0; byPrimary.size < 3; i++) {
      const ns = `ns${i}`;
      const primary = await c.primaryOf(await keySlot(c.nodes[0]?.port as number, `dps:{${ns}}:seq`));
      if (!byPrimary.has(primary.port)) byPrimary.set(primary.port, ns);
    }
    const namespaces = [...byPrimary.values()];
    servers = await Promise.all(namespaces.map((ns) => startTestServer(c.url, { DPS_NAMESPACE: ns })));
    const published = new Map<string, number[]>();
    const live: RawClient[] = [];
    for (const [i, ns] of namespaces.entries()) {
      const s = servers[i] as TestServer;
      const rc = await RawClient.connect(s.wsUrl);
      await rc.hello({ recipient: 'live-reader', subs: ['news.*'] });
      await rc.next('live');
      live.push(rc);
      const ids: number[] = [];
      for (let n = 0; n < 30; n++) ids.push((await httpPublish(s, { ch: `news.${ns}`, data: { ns, n } })).body.id);
      published.set(ns, ids);
    }
    for (const [i, ns] of namespaces.entries()) {
      const s = servers[i] as TestServer;
      // Live, through a subscriber connected to whichever node, from a primary that may be another.
      const rc = live[i] as RawClient;
      await until(() => rc.frames.filter((f) => f.op === 'msg').length === 30, 10_000, `live messages of ${ns}`);
      expect(rc.frames.filter((f) => f.op === 'msg').map((f) => f.id)).toEqual(published.get(ns));
      expect(rc.frames.filter((f) => f.op === 'msg').every((f) => f.ch === `news.${ns}`)).toBe(true);
      rc.close();
      // Offline replay from the namespace's shard.
      const late = await RawClient.connect(s.wsUrl);
      await late.hello({ recipient: 'late', subs: ['news.*'], from: 'earliest' });
      await late.next('live');
      expect(late.frames.filter((f) => f.op === 'msg').map((f) => f.id)).toEqual(published.get(ns));
      late.close();
    }
    // Each primary holds the keys of its namespace and of no other.
    const held: string[] = [];
    for (const [port, ns] of byPrimary) {
      const node = c.nodes.find((n) => n.port === port);
      const { Redis } = await import('ioredis');
      const r = new Redis({ port: node?.port, host: '127.0.0.1', protocol: 2 });
      const keys = (await r.keys('dps:*')) as string[];
      r.disconnect();
      const tags = [...new Set(keys.map((k) => /^dps:\{([^}]+)\}/.exec(k)?.[1]))];
      held.push(`${port}: ${ns} (${keys.length} keys)`);
      expect(tags).toEqual([ns]);
    }
    console.log(`cluster namespaces: ${held.join(', ')}; 30 messages each, delivered live and replayed exactly`);
  });

  it.each([3, 6])(
    'sharded pub/sub on %i shards: a durable publish sends no message over the cluster bus; classic PUBLISH (DPS_SHARDED_PUBSUB=off) one to every other node',
    async (shards) => {
      cluster = await startCluster(shards);
      const c = cluster;
      servers = await Promise.all([
        startTestServer(c.url, { DPS_NAMESPACE: 'bus' }),
        startTestServer(c.url, { DPS_NAMESPACE: 'busclassic', DPS_SHARDED_PUBSUB: 'off' }),
      ]);
      const N = 100;
      let shardSubs: unknown;
      const measure = async (s: TestServer): Promise<Bus> => {
        const rc = await RawClient.connect(s.wsUrl);
        await rc.hello({ recipient: 'bus-reader', subs: ['bus.*'] });
        await rc.next('live');
        // The sharded server's bridge is subscribed on its namespace's primary while it has a reader.
        if (s === servers[0]) {
          const primary = await c.primaryOf(await keySlot(c.nodes[0]?.port as number, 'dps:{bus}:live'));
          shardSubs = await pubsubOn(primary.port, 'SHARDNUMSUB', 'dps:{bus}:live');
        }
        // A namespace's first node announces its mode on the classic path (a marker PUBLISHed at start): let the bus
        // deliver it before the counters are read (settled: every message sent over the bus has been received).
        let before = await busCounters(c);
        await until(
          async () => {
            before = await busCounters(c);
            return before.publish_received === before.publish_sent && before.publishshard_received === before.publishshard_sent;
          },
          5000,
          'the bus to settle',
        );
        const ids: number[] = [];
        for (let n = 0; n < N; n++) ids.push((await httpPublish(s, { ch: `bus.${n % 7}`, data: n })).body.id);
        await until(() => rc.msgIds().length >= N, 10_000, 'every message live');
        expect(rc.msgIds()).toEqual(ids);
        rc.close();
        // Sent as the PUBLISH runs; counted as received when the other node has read it off the bus.
        let after = before;
        await until(
          async () => {
            after = await busCounters(c);
            return after.publish_received - before.publish_received >= after.publish_sent - before.publish_sent;
          },
          5000,
          'the bus to deliver',
        );
        return Object.fromEntries(BUS.map((k) => [k, after[k] - before[k]])) as Bus;
      };
      const sharded = await measure(servers[0] as TestServer);
      const classic = await measure(servers[1] as TestServer);
      expect(shardSubs).toEqual(['dps:{bus}:live', 1]);
      const per = (b: Bus) => BUS.map((k) => `${k} ${(b[k] / N).toFixed(2)}`).join(', ');
      console.log(
        `cluster bus, ${shards} shards, per durable publish (${N} publishes, CLUSTER INFO summed over the nodes): ` +
          `sharded pub/sub: ${per(sharded)}; classic PUBLISH: ${per(classic)}`,
      );
      expect(sharded).toEqual({ publish_sent: 0, publish_received: 0, publishshard_sent: 0, publishshard_received: 0 });
      expect(classic.publish_sent).toBe(N * (shards - 1));
      expect(classic.publish_received).toBe(N * (shards - 1));
    },
  );

  it("the namespace's slot moved to another primary: the bridge follows it (SSUBSCRIBE there) and clients miss nothing", async () => {
    cluster = await startCluster(3);
    const c = cluster;
    const server = await startTestServer(c.url);
    servers = [server];
    const rc = await RawClient.connect(server.wsUrl);
    await rc.hello({ recipient: 'mover', subs: ['mv.*'] });
    await rc.next('live');
    const slot = await keySlot(c.nodes[0]?.port as number, 'dps:{default}:live');
    const from = await c.primaryOf(slot);
    const to = c.nodes.find((n) => n.port !== from.port) as (typeof c.nodes)[number];
    const ids: number[] = [];
    for (let n = 0; n < 10; n++) ids.push((await httpPublish(server, { ch: 'mv.a', data: n })).body.id);
    await migrateSlot(slot, from.port, to.port);
    // Redis unsubscribed the bridge on the old owner; it subscribes on the new one.
    await until(
      async () => JSON.stringify(await pubsubOn(to.port, 'SHARDNUMSUB', 'dps:{default}:live')) === '["dps:{default}:live",1]',
      10_000,
      'the shard channel subscribed on the new owner',
    );
    expect(await pubsubOn(from.port, 'SHARDNUMSUB', 'dps:{default}:live')).toEqual(['dps:{default}:live', 0]);
    // Publishes may be refused while the Cluster client learns the move; the ones that were stored all arrive.
    await until(
      async () => {
        const r = await httpPublish(server, { ch: 'mv.a', data: 'after' });
        if (r.status === 200) ids.push(r.body.id);
        return ids.length >= 20;
      },
      15_000,
      'ten publishes after the move',
    );
    await rc.waitFor((f) => f.id === ids[ids.length - 1]);
    expect(rc.msgIds()).toEqual(ids);
    rc.close();
  });

  it('two nodes switched classic -> sharded -> classic mid-stream on 3 shards: each follows on the slot owner, every client gets every id once, in order', async () => {
    cluster = await startCluster(3);
    const c = cluster;
    const env = { DPS_NAMESPACE: 'flip', DPS_PUBSUB_MODE_POLL: '600000' };
    servers = [await startTestServer(c.url, { ...env, DPS_SHARDED_PUBSUB: 'off' })];
    servers.push(await startTestServer(c.url, env));
    const [a, b] = servers as [TestServer, TestServer];
    const rcs = await Promise.all(
      [a, b].map(async (s, i) => {
        const rc = await RawClient.connect(s.wsUrl);
        await rc.hello({ recipient: `flip-${i}`, subs: ['f.*'] });
        await rc.next('live');
        return rc;
      }),
    );
    const ids: number[][] = [[], []];
    let stop = false;
    const loops = [a, b].map(async (s, i) => {
      for (let n = 0; !stop; n++) {
        const r = await httpPublish(s, { ch: `f.${i}`, data: n });
        if (r.status === 200) (ids[i] as number[]).push(r.body.id);
      }
    });
    const count = () => (ids[0] as number[]).length + (ids[1] as number[]).length;
    const more = async (n: number) => {
      const target = count() + n;
      await until(() => count() >= target, 20_000, `${n} more publishes`);
    };
    const owner = await c.primaryOf(await keySlot(c.nodes[0]?.port as number, 'dps:{flip}:live'));
    const settled = (mode: string) => () => [a, b].every((s) => s.bridge.mode === mode && s.bridge.state === 'up');
    await more(100);
    expect(await a.store.pubsub.switch('sharded')).toBe('classic');
    await until(settled('sharded'), 10_000, 'both nodes sharded');
    expect(await pubsubOn(owner.port, 'SHARDNUMSUB', 'dps:{flip}:live')).toEqual(['dps:{flip}:live', 2]);
    await more(100);
    expect(await b.store.pubsub.switch('classic')).toBe('sharded');
    await until(settled('classic'), 10_000, 'both nodes classic');
    await more(100);
    stop = true;
    await Promise.all(loops);
    const all = [...(ids[0] as number[]), ...(ids[1] as number[])].sort((x, y) => x - y);
    for (const rc of rcs) {
      await rc.waitFor((f) => f.id === all[all.length - 1], 20_000, 'the last id');
      expect(rc.msgIds()).toEqual(all);
      rc.close();
    }
  });

  it('3 primaries + 3 replicas: the namespace primary is killed and its replica promoted; clients are told (reset) and then get the whole log', async () => {
    cluster = await startCluster(3, 1);
    const c = cluster;
    // The janitor is off here, so the log shows what survived the failover.
    const server = await startTestServer(c.url, { DPS_JANITOR_INTERVAL: '600000' });
    servers = [server];
    const recipients: [string, string[], (ch: string) => boolean][] = [
      ['cf-all', ['cf.*'], () => true],
      ['cf-a', ['cf.a'], (ch) => ch === 'cf.a'],
    ];
    clients = recipients.map(([name, patterns]) => record(server.wsUrl, name, patterns));
    await allLive(clients);
    const pubs = (publishers = [0, 1].map((i) => steadyPublisher(server.url, `cf${i}`, ['cf.a', 'cf.b'], 3)));
    await sleep(1500);
    const primary = await c.primaryOf(await keySlot(c.nodes[0]?.port as number, 'dps:{default}:seq'));
    const replica = await c.replicaOf(primary);
    if (!replica) throw new Error(`no replica of ${primary.port}`);
    // What lets the replica fail over at all: a live link to its primary (startCluster waits for it).
    expect((await info(replica.port, 'replication')).get('master_link_status')).toBe('up');
    const t0 = performance.now();
    await primary.kill();
    const slot = await keySlot(replica.port, 'dps:{default}:seq');
    await until(async () => (await c.primaryOf(slot).catch(() => null))?.port === replica.port, 30_000, 'the replica to be promoted').catch(
      async (err: Error) => {
        // Say why: master_link_down_since_seconds -1 is a replica that never synced (it never fails over).
        const r = await info(replica.port, 'replication').catch(() => new Map<string, string>());
        throw new Error(
          `${err.message} (replica ${replica.port}: ${['role', 'master_link_status', 'master_link_down_since_seconds'].map((k) => `${k}=${r.get(k)}`).join(' ')})`,
        );
      },
    );
    const promotedMs = Math.round(performance.now() - t0);
    await until(() => clients.every((r) => r.resets === 1 && r.client.state === 'live'), 30_000, 'every client told and live again');
    const toldMs = Math.round(performance.now() - t0);
    // The bridge moved its SSUBSCRIBE to the slot's new primary.
    await until(
      async () => JSON.stringify(await pubsubOn(replica.port, 'SHARDNUMSUB', 'dps:{default}:live')) === '["dps:{default}:live",1]',
      10_000,
      'the shard channel subscribed on the promoted replica',
    );
    await sleep(1500);
    const results = await Promise.all(pubs.map((p) => p.stop()));
    const acknowledged = results.flatMap((r) => r.published);
    // What the log holds now, channel by channel, on the promoted replica.
    const log = await storedIds(replica.port, ['cf.a', 'cf.b']);
    const inLog = new Set([...log.values()].flat());
    const lost = acknowledged.filter(([id]) => !inLog.has(id));
    const want = (match: (ch: string) => boolean) =>
      [...log]
        .filter(([ch]) => match(ch))
        .flatMap(([, ids]) => ids)
        .sort((a, b) => a - b);
    await until(
      () => clients.every((cl, i) => cl.seen.length >= want(recipients[i]?.[2] as (ch: string) => boolean).length),
      30_000,
      'clients to replay the log',
    );
    await sleep(300);
    console.log(
      `cluster failover: replica promoted ${promotedMs} ms after the kill, every client told (reset) and live ${toldMs} ms after; ` +
        `${acknowledged.length} publishes acknowledged, ${lost.length} of them not in the promoted replica's log` +
        `${lost.length ? ` (ids ${lost.map(([id]) => id).join(',')})` : ''}; refused attempts ${JSON.stringify(mergeFailures(results))}, ` +
        `slowest refusal ${Math.max(...results.map((x) => x.slowestFailureMs)).toFixed(0)} ms, longest outage seen by a publisher ${Math.max(...results.map((x) => x.longestOutageMs)).toFixed(0)} ms`,
    );
    expect(Object.keys(mergeFailures(results)).filter((k) => k !== '503 unavailable')).toEqual([]);
    for (const [i, cl] of clients.entries()) {
      expect(cl.resets).toBe(1);
      expect(cl.seen).toEqual(want(recipients[i]?.[2] as (ch: string) => boolean));
    }
  });
});
