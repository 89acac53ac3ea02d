// Server configuration: PROTOCOL.md's environment variables with their defaults, plus internal tunables.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { OUTBOX_TABLE_RE } from './outbox-sql';
import { PUBLISH_BATCH } from './publisher';
import { isValidNamespace } from './redis/keys';

/** outbox rows per publish at most: the publisher's batch, so one script call stores all of them or none */
export const OUTBOX_MAX_BATCH = PUBLISH_BATCH;

export interface Config {
  port: number;
  host: string;
  redisUrl: string | undefined;
  dataDir: string;
  /** appendfsync of the managed Redis */
  redisFsync: 'always' | 'everysec';
  namespace: string;
  jwtSecret: string | undefined;
  jwtPublicKey: string | undefined;
  allowedOrigins: string[] | undefined;
  wsPath: string;
  maxFrame: number;
  maxBody: number;
  retentionMaxLen: number;
  retentionMaxAgeSec: number;
  recipientTtlSec: number;
  janitorIntervalMs: number;
  helloTimeoutMs: number;
  idempotencyWindowSec: number;
  /** messages per replay page (and per-channel read chunk at most) */
  replayPage: number;
  /** live messages held per socket while it catches up; past it the store serves them */
  catchUpBuffer: number;
  /** bytes queued on a live socket before it falls back to being served from the store */
  sendHighWater: number;
  /** distinct patterns above which the bridge takes the namespace's whole live stream */
  bridgeWideThreshold: number;
  /**
   * the pub/sub mode a namespace that has none yet gets from the first node (the mode is the namespace's, stored in
   * Redis): 'auto': sharded where Redis has it (>= 7) and no classic subscriber is visible; 'off': classic
   */
  shardedPubsub: 'auto' | 'off';
  /** ms between reads of the namespace's pub/sub mode (the fallback for a node that missed a switch's marker) */
  pubsubModePollMs: number;
  /** messages per HTTP batch publish at most */
  maxBatch: number;
  /** recipients exported with their lag in /metrics (the furthest behind); 0: none */
  metricsLagTop: number;
  /** frames a connection may send per second (burst included); past it: close 4429 */
  maxFramesPerSec: number;
  /** patterns per connection */
  maxPatterns: number;
  /** `*` in one pattern at most (Redis's matcher backtracks on many) */
  maxPatternStars: number;
  /** connections of one recipient on this node */
  maxConnectionsPerRecipient: number;
  /**
   * open connections (WebSocket, HTTP) of this process's own server at most; past it a worker's connections go to
   * another worker (all full: they wait in the primary), and a single process closes them (0: no limit)
   */
  maxConnections: number;
  /** ms a socket over its send buffer limit may make no progress before it is closed with 4508 */
  slowConsumerTimeoutMs: number;
  /** ms between WebSocket pings; a connection silent since the previous ping is terminated */
  heartbeatIntervalMs: number;
  /** ms between the keep-alive comments of an SSE stream */
  sseKeepAliveMs: number;
  /** ms a Durable Streams long-poll (`GET /v1/stream/…?live=long-poll`) waits for data before its 204 */
  streamLongPollMs: number;
  /** ms a Durable Streams long-poll or SSE reader looks again without a wake-up (one lost with the subscriber) */
  streamRecheckMs: number;
  /** ms after which a Redis connection that does not answer is down; a publish is answered within it */
  redisTimeoutMs: number;
  /** postgres://… of the app's database: this server also relays its outbox table (docs/outbox.md); unset: no relay */
  outboxUrl: string | undefined;
  /** the outbox table (created with its triggers when missing) */
  outboxTable: string;
  /** ms between polls of the outbox when no notification came, and between tries for the relay's lock */
  outboxPollMs: number;
  /** outbox rows per publish (one script call: all stored or none), at most 500 */
  outboxBatch: number;
  demo: boolean;
  /** server processes of `serve` sharing the port (node:cluster); 1: one process, no cluster */
  workers: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, dflt: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw new ConfigError(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** REDIS_URL, or a Cluster / Sentinel named by their own variables (as a `redis+cluster://` / `redis+sentinel://` URL). */
function redisTarget(env: Env): string | undefined {
  const url = str(env, 'REDIS_URL');
  const cluster = str(env, 'REDIS_CLUSTER_NODES');
  const sentinels = str(env, 'REDIS_SENTINELS');
  if ([url, cluster, sentinels].filter(Boolean).length > 1)
    throw new ConfigError('set only one of REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS');
  if (cluster) return `redis+cluster://${cluster}`;
  if (sentinels) return `redis+sentinel://${sentinels}/${encodeURIComponent(str(env, 'REDIS_SENTINEL_NAME') ?? 'mymaster')}`;
  if (url && !/^rediss?(\+(cluster|sentinel))?:\/\//.test(url))
    throw new ConfigError(
      `REDIS_URL must start with redis://, rediss://, redis+cluster:// or redis+sentinel://, got ${JSON.stringify(url)}`,
    );
  return url;
}

function sharded(env: Env): 'auto' | 'off' {
  const v = str(env, 'DPS_SHARDED_PUBSUB') ?? 'auto';
  if (v !== 'auto' && v !== 'off')
    throw new ConfigError(
      `DPS_SHARDED_PUBSUB must be auto or off, got ${JSON.stringify(v)} (it decides a new namespace's first mode; \`durable-pubsub pubsub-mode sharded\` switches one)`,
    );
  return v;
}

function fsync(env: Env): 'always' | 'everysec' {
  const v = str(env, 'DPS_REDIS_FSYNC') ?? 'always';
  if (v !== 'always' && v !== 'everysec') throw new ConfigError(`DPS_REDIS_FSYNC must be always or everysec, got ${JSON.stringify(v)}`);
  return v;
}

export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const namespace = str(env, 'DPS_NAMESPACE') ?? 'default';
  if (!isValidNamespace(namespace)) throw new ConfigError('DPS_NAMESPACE must be 1-64 characters of A-Z a-z 0-9 _ . -');
  const origins = str(env, 'DPS_ALLOWED_ORIGINS');
  const config: Config = {
    port: int(env, 'PORT', 8080),
    host: str(env, 'HOST') ?? '127.0.0.1',
    redisUrl: redisTarget(env),
    redisFsync: fsync(env),
    // pnpm runs scripts in the package folder; relative paths are the caller's (INIT_CWD).
    dataDir: resolve(env.INIT_CWD ?? process.cwd(), str(env, 'DPS_DATA_DIR') ?? './.data'),
    namespace,
    jwtSecret: str(env, 'DPS_JWT_SECRET'),
    jwtPublicKey: str(env, 'DPS_JWT_PUBLIC_KEY'),
    allowedOrigins: origins
      ? origins
          .split(',')
          .map((o) => o.trim())
          .filter(Boolean)
      : undefined,
    wsPath: str(env, 'DPS_WS_PATH') ?? '/ws',
    maxFrame: int(env, 'DPS_MAX_FRAME', 65536, 64),
    maxBody: int(env, 'DPS_MAX_BODY', 1048576, 64),
    retentionMaxLen: int(env, 'DPS_RETENTION_MAX_LEN', 100000, 1),
    retentionMaxAgeSec: int(env, 'DPS_RETENTION_MAX_AGE', 604800, 1),
    recipientTtlSec: int(env, 'DPS_RECIPIENT_TTL', 2592000, 1),
    janitorIntervalMs: int(env, 'DPS_JANITOR_INTERVAL', 1000, 10),
    helloTimeoutMs: int(env, 'DPS_HELLO_TIMEOUT', 10000, 1),
    idempotencyWindowSec: int(env, 'DPS_IDEMPOTENCY_WINDOW', 86400, 1),
    replayPage: int(env, 'DPS_REPLAY_PAGE', 1000, 1),
    catchUpBuffer: int(env, 'DPS_CATCHUP_BUFFER', 10000, 1),
    sendHighWater: int(env, 'DPS_SEND_HIGH_WATER', 1 << 20, 1024),
    bridgeWideThreshold: int(env, 'DPS_BRIDGE_WIDE_THRESHOLD', 32, 0),
    shardedPubsub: sharded(env),
    pubsubModePollMs: int(env, 'DPS_PUBSUB_MODE_POLL', 5000, 100),
    maxBatch: int(env, 'DPS_MAX_BATCH', 1000, 1),
    metricsLagTop: int(env, 'DPS_METRICS_LAG_TOP', 10, 0),
    maxFramesPerSec: int(env, 'DPS_MAX_FRAMES_PER_SEC', 200, 1),
    maxPatterns: int(env, 'DPS_MAX_PATTERNS', 100, 1),
    maxPatternStars: int(env, 'DPS_MAX_PATTERN_STARS', 4, 0),
    maxConnectionsPerRecipient: int(env, 'DPS_MAX_CONNECTIONS_PER_RECIPIENT', 20, 1),
    maxConnections: int(env, 'DPS_MAX_CONNECTIONS', connectionLimit(), 0),
    slowConsumerTimeoutMs: int(env, 'DPS_SLOW_CONSUMER_TIMEOUT', 30000, 10),
    heartbeatIntervalMs: int(env, 'DPS_HEARTBEAT_INTERVAL', 25000, 100),
    redisTimeoutMs: int(env, 'DPS_REDIS_TIMEOUT', 5000, 500),
    sseKeepAliveMs: int(env, 'DPS_SSE_KEEPALIVE', 15000, 100),
    outboxUrl: outboxUrl(env),
    outboxTable: str(env, 'DPS_OUTBOX_TABLE') ?? 'dps_outbox',
    outboxPollMs: int(env, 'DPS_OUTBOX_POLL', 1000, 10),
    outboxBatch: int(env, 'DPS_OUTBOX_BATCH', 500, 1),
    streamLongPollMs: int(env, 'DPS_STREAM_LONG_POLL', 30000, 100),
    streamRecheckMs: int(env, 'DPS_STREAM_RECHECK', 2000, 10),
    demo: env.DPS_DEMO === '1' || env.DPS_DEMO === 'true',
    workers: int(env, 'DPS_WORKERS', availableParallelism(), 1),
    ...overrides,
  };
  checkOutbox(config);
  return config;
}

/** files a process keeps for itself besides its connections: Redis, PostgreSQL, logs, static files, the rest */
const FILES_KEPT = 1024;

/**
 * The default of DPS_MAX_CONNECTIONS: the process's open-file limit (Node raises its soft limit to the hard one) less
 * the files it keeps for itself, so that a worker never fails an accept or a Redis reconnect for want of a file
 * (a worker at the limit has its connections routed to the others). 0 (no limit) where the limit cannot be read.
 */
function connectionLimit(): number {
  try {
    const line = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return line ? Math.max(FILES_KEPT, Number(line[1]) - FILES_KEPT) : 0;
  } catch {
    return 0;
  }
}

function outboxUrl(env: Env): string | undefined {
  const url = str(env, 'DPS_OUTBOX_URL');
  if (url && !/^postgres(ql)?:\/\//.test(url))
    throw new ConfigError(`DPS_OUTBOX_URL must start with postgres:// or postgresql://, got ${JSON.stringify(url)}`);
  return url;
}

/** The outbox settings, from the environment or from options. */
export function checkOutbox(config: Pick<Config, 'outboxTable' | 'outboxBatch'>): void {
  if (!OUTBOX_TABLE_RE.test(config.outboxTable))
    throw new ConfigError(
      `DPS_OUTBOX_TABLE must be a lowercase SQL name (a-z, 0-9, _), optionally schema.name, got ${JSON.stringify(config.outboxTable)}`,
    );
  if (!Number.isSafeInteger(config.outboxBatch) || config.outboxBatch < 1 || config.outboxBatch > OUTBOX_MAX_BATCH)
    throw new ConfigError(`DPS_OUTBOX_BATCH must be 1-${OUTBOX_MAX_BATCH}, got ${config.outboxBatch}`);
}
