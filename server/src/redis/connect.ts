// ioredis connections with the failure behaviour the guarantees need (no silent queueing or resending), for one Redis, a Cluster or Sentinel.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { commandOf } from './scripts';

/**
 * Where Redis is, from one string:
 * - `redis://host:port/db`, `rediss://…`: one server;
 * - `redis+cluster://host:port,host:port`: a Cluster (any reachable nodes; the rest are discovered);
 * - `redis+sentinel://host:port,host:port/mastername`: the primary that these Sentinels name.
 * Credentials (`user:password@`) apply to the Redis servers; `rediss+cluster` / `rediss+sentinel` use TLS.
 */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; nodes: { host: string; port: number }[]; options: RedisOptions }
  | { kind: 'sentinel'; sentinels: { host: string; port: number }[]; name: string; options: RedisOptions };

function hostList(list: string): { host: string; port: number }[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((hp) => {
      const m = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(hp);
      if (!m?.[1]) throw new Error(`bad host:port ${JSON.stringify(hp)}`);
      return { host: m[1], port: Number(m[2] ?? 6379) };
    });
}

export function parseRedisTarget(url: string): RedisTarget {
  const m = /^(rediss?)\+(cluster|sentinel):\/\/(?:([^@/]*)@)?([^/?]+)(?:\/([^?]*))?/.exec(url);
  if (!m) return { kind: 'single', url };
  const [, scheme, kind, auth, hosts, path] = m as unknown as [string, string, string, string | undefined, string, string | undefined];
  const options: RedisOptions = {};
  if (auth) {
    const [user, ...rest] = auth.split(':');
    if (rest.length) {
      options.username = decodeURIComponent(user ?? '') || undefined;
      options.password = decodeURIComponent(rest.join(':'));
    } else options.password = decodeURIComponent(user ?? '');
  }
  if (scheme === 'rediss') options.tls = {};
  if (kind === 'cluster') return { kind: 'cluster', nodes: hostList(hosts), options };
  return { kind: 'sentinel', sentinels: hostList(hosts), name: decodeURIComponent(path || 'mymaster'), options };
}

const common: RedisOptions = {
  // RESP2 keeps pub/sub on its own connection with plain pmessage replies.
  protocol: 2,
  lazyConnect: true,
  retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
};

/** Not queued while Redis is down (fails at once, as `unavailable`); a command in flight when the connection drops fails, not resent. */
const noQueue: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
};

/**
 * A connection that stops answering without closing (a stalled proxy, a NAT that forgot it) is destroyed by ioredis
 * once a command has waited half of DPS_REDIS_TIMEOUT for any byte; the heartbeat (liveness.ts) keeps a command
 * waiting every quarter of it, so silence is noticed within three quarters. TCP keepalive would take ~40 s idle, and
 * never notices while a command is in flight; ioredis's commandTimeout leaves a silent connection in place.
 */
function silenceBound(timeoutMs: number): RedisOptions {
  return { socketTimeout: Math.round(timeoutMs / 2) };
}

const SOCKET_TIMEOUT = /^Socket timeout/;

/**
 * ioredis's socketTimeout is a timer, and timers run before the event loop reads its sockets: a process busy for
 * longer than it (a connect storm of 100,000 on starved cores; 20,000 on two workers with DPS_REDIS_TIMEOUT=500)
 * found Redis's answers waiting unread and destroyed healthy connections, failing every command in flight (the
 * hellos then closed with 1001) and losing the subscription: the server closing connections for its own slowness.
 * The destroy is put off until the sockets were read; a byte that came meanwhile keeps the connection (ioredis has
 * already re-armed its timer on it). A connection that really went silent is destroyed one loop turn later.
 */
export function lagProof<T extends Redis>(redis: T): T {
  redis.on('connect', () => {
    const stream = (redis as unknown as { stream?: Socket & { [LAG_PROOF]?: true } }).stream;
    if (!stream || stream[LAG_PROOF]) return;
    stream[LAG_PROOF] = true;
    let lastData = 0;
    stream.on('data', () => {
      lastData = performance.now();
    });
    const destroy = stream.destroy.bind(stream);
    stream.destroy = (err?: Error) => {
      if (!err || !SOCKET_TIMEOUT.test(err.message)) return destroy(err);
      const firedAt = performance.now();
      setImmediate(() => {
        if (lastData < firedAt) destroy(err);
      });
      return stream;
    };
  });
  return redis;
}
const LAG_PROOF = Symbol('lagProof');

function redisFor(target: RedisTarget, extra: RedisOptions): Redis {
  if (target.kind === 'single') return lagProof(new Redis(target.url, { ...common, ...extra }));
  if (target.kind === 'sentinel')
    return lagProof(
      new Redis({ ...common, ...target.options, ...extra, sentinels: target.sentinels, name: target.name, failoverDetector: true }),
    );
  throw new Error('a Cluster has no single connection');
}

/**
 * Scripts that already carry the requests of a whole event-loop turn (TurnBatch): auto-pipelining would
 * hold each for one more turn, and a turn of a busy server is all its socket reads (milliseconds).
 */
const WRITTEN_AT_ONCE = ['publishmany', 'ackmany'].map(commandOf);

/**
 * The command connection. A publish must never be stored "later": commands are
 * not queued while Redis is down, and a command in flight when the connection
 * drops is failed, not resent. On a Cluster the client is typed as `Redis`: it
 * offers the same commands, and every key of a namespace is in one slot.
 */
export function commandConnection(url: string, timeoutMs = 5000): Redis {
  const target = parseRedisTarget(url);
  if (target.kind === 'cluster') {
    const cluster = new Cluster(target.nodes, {
      lazyConnect: true,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      autoPipeliningIgnoredCommands: WRITTEN_AT_ONCE,
      // Failover: the slot's new primary is asked for after a short wait, a few times at most.
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 200,
      maxRedirections: 8,
      clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
      redisOptions: { ...common, ...target.options, ...noQueue, ...silenceBound(timeoutMs), connectionName: 'dps-command' },
    });
    cluster.on('+node', (node: Redis) => lagProof(node));
    return cluster as unknown as Redis;
  }
  return redisFor(target, {
    ...noQueue,
    ...silenceBound(timeoutMs),
    enableAutoPipelining: true,
    autoPipeliningIgnoredCommands: WRITTEN_AT_ONCE,
    connectionName: 'dps-command',
  });
}

/** What the bridge needs of a subscriber connection. */
export interface Subscriber {
  readonly status: string;
  on(event: 'pmessageBuffer', fn: (pattern: Buffer, channel: Buffer, message: Buffer) => void): unknown;
  on(event: 'smessageBuffer' | 'messageBuffer', fn: (channel: Buffer, message: Buffer) => void): unknown;
  on(event: 'close' | 'ready', fn: () => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
  psubscribe(...patterns: string[]): Promise<unknown>;
  punsubscribe(...patterns: string[]): Promise<unknown>;
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
  /** sharded pub/sub (Redis >= 7): on a Cluster, only on a node serving the channel's slot */
  ssubscribe(...channels: string[]): Promise<unknown>;
  sunsubscribe(...channels: string[]): Promise<unknown>;
  /** the liveness probe (allowed in subscriber mode) */
  ping(token: string): Promise<unknown>;
  /** `reconnect`: closes this connection and opens another (`close`, then `ready`), else for good */
  disconnect(reconnect?: boolean): void;
}

/**
 * The bridge (re)subscribes itself on `ready`, so it knows when live is live again: nothing is queued while down, and a
 * PSUBSCRIBE in flight when the connection drops is not resent behind the bridge's back.
 */
const subscriberOptions: RedisOptions = {
  ...noQueue,
  autoResubscribe: false,
  // Not 'dps-subscriber', the name versions without pub/sub modes give theirs: a new namespace's first node looks for
  // those (an idle one holds no subscription to see), and chooses classic while one is connected (pubsub-mode.ts).
  connectionName: 'dps-live',
};

type Node = { host: string; port: number };

/** Where a shard channel lives: the primary serving its slot, as the Cluster client knows it (`refresh`: ask the Cluster first). */
type ShardOwner = (refresh: boolean) => Promise<Node | null>;

/**
 * A Cluster forwards every PUBLISH to every node, so one connection to any
 * node hears the whole namespace. When that node goes away this moves to the
 * next known node (the list is refreshed from the Cluster), and reports the
 * switch as `close` then `ready`, so the bridge knows live delivery had a hole.
 *
 * A SPUBLISH (sharded pub/sub) reaches only the nodes of its slot's shard, so
 * with `owner` given the connection goes to the primary that serves the shard
 * channel's slot, whatever the mode: the namespace's mode may change while the
 * server runs, and there classic PUBLISHes are heard where they run, with no
 * cluster bus in between (both paths in one order on one connection). When the slot moves away (Redis pushes an unasked
 * `sunsubscribe`, which ioredis reports as `moved`), an SSUBSCRIBE is refused
 * (MOVED, CLUSTERDOWN) or the node goes away (a failover), the connection is
 * dropped and opened again on the slot's owner, read anew from the Cluster.
 */
class ClusterSubscriber extends EventEmitter implements Subscriber {
  private conn: Redis | null = null;
  private nodes: { host: string; port: number }[];
  private next = 0;
  private closed = false;

  constructor(
    seeds: { host: string; port: number }[],
    private readonly options: RedisOptions,
    private readonly discover: () => { host: string; port: number }[],
    private readonly timeoutMs: number,
    private readonly owner?: ShardOwner,
    private readonly name = 'dps-live',
  ) {
    super();
    this.nodes = [...seeds];
  }

  get status(): string {
    return this.conn?.status ?? 'wait';
  }

  /** Resolves at the first `ready`, trying the nodes in turn. */
  connect(): Promise<void> {
    const ready = new Promise<void>((resolve) => this.once('ready', resolve));
    this.open();
    return ready;
  }

  private open(): void {
    if (!this.owner) return this.openOn(this.nextNode());
    this.owner(this.next++ > 0).then(
      (node) => this.openOn(node ?? this.nextNode()),
      () => this.openOn(this.nextNode()),
    );
  }

  private nextNode(): Node {
    const known = this.discover();
    if (known.length) this.nodes = known;
    return this.nodes[this.next++ % this.nodes.length] as Node;
  }

  private openOn(node: Node): void {
    if (this.closed) return;
    const conn = lagProof(
      new Redis({
        ...common,
        ...this.options,
        ...subscriberOptions,
        ...silenceBound(this.timeoutMs),
        connectionName: this.name,
        host: node.host,
        port: node.port,
        // A node that stops answering is left for the next one rather than retried.
        retryStrategy: () => null,
      }),
    );
    this.conn = conn;
    conn.on('error', () => {});
    conn.on('pmessageBuffer', (p: Buffer, c: Buffer, m: Buffer) => this.emit('pmessageBuffer', p, c, m));
    conn.on('smessageBuffer', (c: Buffer, m: Buffer) => this.emit('smessageBuffer', c, m));
    conn.on('messageBuffer', (c: Buffer, m: Buffer) => this.emit('messageBuffer', c, m));
    // The slot moved away: Redis unsubscribed us. Move too.
    conn.on('moved', () => conn.disconnect());
    conn.on('ready', () => this.emit('ready'));
    conn.on('close', () => this.emit('close'));
    conn.on('end', () => {
      if (this.closed || conn !== this.conn) return;
      setTimeout(() => this.open(), 100);
    });
    conn.connect().catch(() => {});
  }

  psubscribe(...patterns: string[]): Promise<unknown> {
    return this.conn ? this.conn.psubscribe(...patterns) : Promise.reject(new Error('not connected'));
  }

  punsubscribe(...patterns: string[]): Promise<unknown> {
    return this.conn ? this.conn.punsubscribe(...patterns) : Promise.reject(new Error('not connected'));
  }

  subscribe(...channels: string[]): Promise<unknown> {
    return this.conn ? this.conn.subscribe(...channels) : Promise.reject(new Error('not connected'));
  }

  unsubscribe(...channels: string[]): Promise<unknown> {
    return this.conn ? this.conn.unsubscribe(...channels) : Promise.reject(new Error('not connected'));
  }

  sunsubscribe(...channels: string[]): Promise<unknown> {
    return this.conn ? this.conn.sunsubscribe(...channels) : Promise.reject(new Error('not connected'));
  }

  async ssubscribe(...channels: string[]): Promise<unknown> {
    const conn = this.conn;
    if (!conn) throw new Error('not connected');
    try {
      return await conn.ssubscribe(...channels);
    } catch (err) {
      // Not this node's slot (any more), or the Cluster is failing over: find the owner again.
      conn.disconnect();
      throw err;
    }
  }

  ping(token: string): Promise<unknown> {
    return this.conn ? this.conn.ping(token) : Promise.reject(new Error('not connected'));
  }

  disconnect(reconnect = false): void {
    // A connection that ends opens the next one, unless closed.
    if (!reconnect) this.closed = true;
    this.conn?.disconnect();
  }
}

/** The primary serving `channel`'s slot, from the Cluster client's slot table (refreshed first when `refresh`, 2 s at most). */
function shardOwner(cluster: Cluster, channel: string): ShardOwner {
  let slot: number | undefined;
  return async (refresh) => {
    if (refresh)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2000);
        cluster.refreshSlotsCache(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    slot ??= Number(await cluster.call('CLUSTER', 'KEYSLOT', channel));
    const key = cluster.slots[slot]?.[0];
    if (!key) return null;
    const colon = key.lastIndexOf(':');
    return { host: key.slice(0, colon), port: Number(key.slice(colon + 1)) };
  };
}

/**
 * The subscriber connection: the bridge re-subscribes itself, so it knows when live is live again. `shardChannel`:
 * the namespace's shard channel, which the bridge SSUBSCRIBEs in sharded mode: on a Cluster the connection goes to the
 * node serving it. `name`: its CLIENT name (the bridge's is `dps-live`).
 */
export function subscriberConnection(url: string, command?: Redis, timeoutMs = 5000, shardChannel?: string, name = 'dps-live'): Subscriber {
  const target = parseRedisTarget(url);
  if (target.kind === 'cluster') {
    const cluster = command as unknown as Cluster | undefined;
    const discover = () =>
      cluster && typeof cluster.nodes === 'function'
        ? cluster.nodes('all').map((n) => ({ host: n.options.host as string, port: n.options.port as number }))
        : [];
    const owner = cluster && shardChannel ? shardOwner(cluster, shardChannel) : undefined;
    return new ClusterSubscriber(target.nodes, target.options, discover, timeoutMs, owner, name);
  }
  return redisFor(target, { ...subscriberOptions, ...silenceBound(timeoutMs), connectionName: name });
}

/** The servers holding the namespace's data: the one server, or every Cluster primary. */
export function primaries(redis: Redis): Redis[] {
  const cluster = redis as unknown as Cluster;
  return redis instanceof Cluster ? cluster.nodes('master') : [redis];
}

/**
 * Whether Redis has sharded pub/sub: Redis >= 7 on every primary that answers (SPUBLISH, SSUBSCRIBE). Asked when a
 * namespace's mode is first decided or switched (pubsub-mode.ts); a Redis replaced by an older one under a sharded
 * namespace is not supported. A Cluster client
 * connects to a node only when it first needs it, and these connections queue nothing: connected first.
 */
export async function shardedPubsub(redis: Redis): Promise<boolean> {
  const answers = await Promise.allSettled(
    primaries(redis).map(async (r) => {
      await connect(r, 5000);
      return (await r.info('server')) as string;
    }),
  );
  const versions = answers.flatMap((a) => (a.status === 'fulfilled' ? [Number(/^redis_version:(\d+)/m.exec(a.value)?.[1] ?? 0)] : []));
  if (!versions.length) throw (answers[0] as PromiseRejectedResult | undefined)?.reason ?? new Error('no Redis primary answered');
  return versions.every((v) => v >= 7);
}

/** Resolves once the connection is ready; rejects after `timeoutMs`. */
export async function connect(redis: Redis | Subscriber, timeoutMs = 10_000): Promise<void> {
  const conn = redis as Redis;
  if (conn.status === 'ready') return;
  const timer = setTimeout(() => conn.disconnect(), timeoutMs);
  try {
    if (conn.status === 'wait') await conn.connect();
    else
      await new Promise<void>((resolve, reject) => {
        conn.once('ready', resolve);
        conn.once('end', () => reject(new Error('Redis connection ended')));
      });
  } finally {
    clearTimeout(timer);
  }
}
