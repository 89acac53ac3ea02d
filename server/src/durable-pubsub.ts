// The embeddable server: durablePubsub() attaches to an app's own HTTP server, serves its routes and publishes in process.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { CloseCode, type HelloFrame, type Json, toClientFrame } from '@durable-pubsub/client-sdk/protocol';
import type { Registry } from 'prom-client';
import { WebSocketServer } from 'ws';
import { bearer, createAuthenticator } from './auth';
import { Bridge } from './bridge';
import { type Config, ConfigError, loadConfig } from './config';
import type { Connection } from './connection';
import { BurstCorker } from './cork';
import { DpsError } from './errors';
import { Gate } from './gate';
import { FrameChecks } from './handover';
import { httpHandler } from './http';
import { originAllowed } from './http-read';
import { Janitor } from './janitor';
import { createLogger, type Level, type Logger, silentLogger } from './log';
import { createMetrics, createStats } from './metrics';
import { OutboxRelay } from './outbox';
import { PollRequest } from './poll';
import { followMode, resolveMode } from './pubsub-mode';
import { commandConnection, connect, subscriberConnection } from './redis/connect';
import { isValidNamespace, subMember } from './redis/keys';
import { Liveness } from './redis/liveness';
import { ReadAhead } from './replay';
import { Session } from './session';
import { stateCounts } from './session-state';
import { SseCache, SseStream } from './sse';
import { Store } from './store';
import { nodeStreams } from './streams/node';
import { startUpkeep } from './upkeep';
import { MsgsCache } from './wire';

/** Every setting of the server (each DPS_* variable as its camelCase field of Config), and where Redis is. */
export interface DurablePubsubOptions
  extends Partial<Omit<Config, 'redisUrl' | 'port' | 'host' | 'dataDir' | 'redisFsync' | 'demo' | 'workers'>> {
  /** redis://, rediss://, redis+sentinel:// or redis+cluster:// */
  redisUrl: string;
  /** a logger, or the level of pino's JSON lines on stdout (default: info) */
  log?: Logger | Level;
  /** a built web app served at / (the demo dashboard) */
  staticDir?: string;
  /** this process owns the Redis server and stops it right after: the log is marked cleanly flushed on close */
  ownsRedis?: boolean;
  /** the other processes serving the same port (`serve --workers`): /metrics and /v1/recipients answer for all */
  peers?: Peers;
}

/** Server processes of one machine that share a port: what /metrics and /v1/recipients' `connections` gather. */
export interface Peers {
  /** Given this instance's own metrics and connections once, for the others to ask for. */
  attach(local: { registry: Registry; connections(): Map<string, number> }): void;
  /** Prometheus text of every process, this one included. */
  metrics(): Promise<string>;
  /** Open connections per (recipient, pattern set) on every process, by `subMember`. */
  connections(): Promise<Map<string, number>>;
}

export interface PublishOptions {
  /** idempotency key: a publish repeated with the same key within the window stores nothing and answers the first id */
  key?: string;
}

/** One durable-pubsub server of a namespace, attached to HTTP servers of the app's choosing. */
export interface DurablePubsub {
  readonly config: Readonly<Config>;
  /** Takes the WebSocket upgrades on `path` (default: the wsPath setting, /ws) of `server`; other upgrades are left alone. */
  attach(server: Server, opts?: { path?: string }): void;
  /** Takes one upgrade request (for frameworks that own the `upgrade` event): a wrong path or origin is refused. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Serves /v1/*, /healthz, /readyz and /metrics; anything else goes to `next` (404 without it). Express middleware as is. */
  handleRequest(req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void;
  /** The log's epoch and newest id now: a page that takes it before loading its state resumes from it (nothing missed). */
  head(): Promise<{ epoch: string; id: number }>;
  /** The outbox relay (docs/outbox.md), when `outboxUrl` is set. */
  readonly outbox: OutboxRelay | null;
  /** Stores and delivers one message (the store path, no HTTP); `dup` when its key was used already. */
  publish(ch: string, data: Json, opts?: PublishOptions): Promise<{ id: number; dup?: true }>;
  /** The one-line form: an HTTP server of its own with the routes and the WebSocket path. */
  listen(port?: number, host?: string): Promise<{ server: Server; port: number; url: string }>;
  /** Graceful: acks received are stored, clients get 1001 (they resume elsewhere), Redis connections close. */
  close(): Promise<void>;
  /** The parts, for tests and tools. */
  readonly store: Store;
  readonly bridge: Bridge;
  readonly janitor: Janitor;
  /** open connections: WebSocket sessions, SSE streams and long-polls */
  readonly sessions: ReadonlySet<Connection>;
}

/** how long a graceful stop waits for acks to be stored before it closes the sockets anyway */
const SHUTDOWN_ACK_WAIT_MS = 3000;
/**
 * Hello scripts of one server in flight to Redis at once (gate.ts): enough to fill the pipeline, few enough that a
 * connect storm of 100,000 leaves Redis free to answer the liveness probe and publishes in time.
 */
const HELLOS_IN_FLIGHT = 256;

/** A process's Config as one instance's options: what concerns the process (its port, its managed Redis, the demo) left out. */
export function instanceSettings(config: Config): Omit<DurablePubsubOptions, 'redisUrl'> {
  const {
    port: _port,
    host: _host,
    dataDir: _dir,
    redisFsync: _fsync,
    demo: _demo,
    redisUrl: _url,
    workers: _workers,
    ...settings
  } = config;
  return settings;
}

function configOf(opts: DurablePubsubOptions): Config {
  const { log: _log, staticDir: _static, ownsRedis: _owns, peers: _peers, ...settings } = opts;
  // Defaults, then the options: the environment is the caller's business (serve reads it).
  const config = loadConfig({}, settings);
  if (!isValidNamespace(config.namespace)) throw new ConfigError('namespace must be 1-64 characters of A-Z a-z 0-9 _ . -');
  if (!opts.redisUrl) throw new ConfigError('redisUrl is required');
  return config;
}

/** Connects to Redis and starts a server of one namespace; it serves once attached (or listening). */
export async function durablePubsub(opts: DurablePubsubOptions): Promise<DurablePubsub> {
  const config = configOf(opts);
  const log = typeof opts.log === 'object' ? opts.log : opts.log === 'silent' ? silentLogger : createLogger(opts.log ?? 'info');
  const redis = commandConnection(opts.redisUrl, config.redisTimeoutMs);
  redis.on('error', (err) => log.debug('redis error', { err: String(err) }));
  const auth = createAuthenticator(config);
  const stats = createStats();
  const store = new Store(redis, { ...config, observe: stats.observeRedis, stats });
  // Any of these may mean another Redis server holds the log now: check before the next id is handed out.
  for (const event of ['close', '-node', 'node error']) redis.on(event, () => store.suspect());
  await connect(redis);
  await store.init();
  // The namespace's pub/sub mode, stored in Redis (decided now if it has none): the scripts publish by it, and the
  // bridge subscribes by it, whatever this node's DPS_SHARDED_PUBSUB says.
  const resolved = await resolveMode(store.pubsub, redis, config.shardedPubsub, config.namespace, log);
  const sub = subscriberConnection(opts.redisUrl, redis, config.redisTimeoutMs, store.keys.liveShard);
  sub.on('error', (err) => log.debug('redis subscriber error', { err: String(err) }));
  const bridge = new Bridge(sub, store.keys, config.bridgeWideThreshold, resolved.mode);
  await connect(sub);
  const modePoll = followMode(bridge, store.pubsub, config.shardedPubsub, config.pubsubModePollMs, log);
  const installFunctions = async () => {
    const why = await store.installFunctions();
    if (why) log.warn('could not install the dps Function library: FCALL dps_publish is not available (needs Redis >= 7)', { err: why });
  };
  await installFunctions();
  const liveness = new Liveness({
    timeoutMs: config.redisTimeoutMs,
    probeCommand: () => store.clock(),
    commandReady: () => store.redisReady,
    command: redis,
    subscriber: sub,
    onSilent: (link) => {
      stats.redisSilent++;
      log.warn(`the Redis ${link} connection went silent; replacing it`, { timeoutMs: config.redisTimeoutMs });
    },
  });
  liveness.start();
  store.on('recovered', (info) => {
    void installFunctions();
    if (info.outcome === 'reset')
      log.warn('Redis restarted or failed over and may have lost acknowledged writes: new epoch, clients replay what is retained', info);
    else
      log.info(info.outcome === 'kept' ? 'Redis restarted; it persists every write, so the log is whole' : 'a new log was started', info);
  });

  const sessions = new Set<Connection>();
  /** admitted, open connections per recipient (the per-recipient limit) */
  const perRecipient = new Map<string, number>();
  /** open connections per state, counted by the sessions' transitions */
  const states = stateCounts();
  bridge.on('down', (reason) => {
    if (reason === 'lost') {
      store.suspect();
      log.warn('lost the Redis subscription; connections will catch up from the store');
    }
    for (const s of sessions) s.liveLost();
  });
  bridge.on('up', () => log.info('Redis subscription is live'));
  bridge.on('invalid', (id, ch) => {
    stats.invalidFrames++;
    log.error('a live message is not a valid msg frame (written around the server); its readers get a gap', { id, ch });
  });
  store.on('epoch', (epoch, previous) => {
    log.warn('the log was lost and started anew (new epoch); closing connections', { epoch, previous });
    for (const s of sessions) if (s.epoch && s.epoch !== epoch) s.close(CloseCode.goingAway, 'the log was reset (new epoch), reconnect');
  });

  /** Open connections per (recipient, pattern set), by `subMember`. */
  const connections = () => {
    const counts = new Map<string, number>();
    for (const s of sessions) {
      if (!s.recipient || s.closed) continue;
      const m = subMember(s.setKey, s.recipient);
      counts.set(m, (counts.get(m) ?? 0) + 1);
    }
    return counts;
  };
  const stopUpkeep = startUpkeep(sessions, config, store);
  const janitor = new Janitor(store, config, log, () => new Set(connections().keys()));
  const registry = createMetrics({
    stats,
    // The relay is made below, once the server's parts are: read when /metrics is asked for.
    outbox: () => (outbox ? { relaying: outbox.state === 'relaying', stats: outbox.stats } : null),
    connectionsByState: () => states,
    topLag: async () => {
      if (!config.metricsLagTop) return [];
      return store.subscriptions.furthestBehind(config.metricsLagTop, await store.channels());
    },
  });
  const { peers } = opts;
  peers?.attach({ registry, connections });
  const streams = nodeStreams(
    {
      store,
      grant: (req, q) => auth.verify(bearer(req.headers.authorization) ?? q.get('token') ?? undefined),
      longPollMs: config.streamLongPollMs,
      recheckMs: config.streamRecheckMs,
      originAllowed: (origin, req) => originAllowed(origin, req.headers.host, config.allowedOrigins, auth.enabled),
    },
    { url: opts.redisUrl, command: redis, timeoutMs: config.redisTimeoutMs },
    log,
  );
  const routes = httpHandler({
    streams: streams.routes,
    store,
    bridge,
    config,
    log,
    staticDir: opts.staticDir,
    connections: peers ? () => peers.connections() : connections,
    registry: peers ? { contentType: registry.contentType, metrics: () => peers.metrics() } : registry,
    auth,
    redisUp: (link) => liveness.up(link),
    readers: {
      sse: (res, hello, ping) => serveReader(new SseStream(res, deps, ping), hello),
      poll: (res, hello, timeoutMs) => serveReader(new PollRequest(res, deps, timeoutMs), hello),
    },
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.maxFrame, perMessageDeflate: false, clientTracking: false });
  const deps = {
    store,
    bridge,
    config,
    log,
    stats,
    auth,
    // Per instance, never per process: two instances in one process share none of these.
    corker: new BurstCorker(),
    readAhead: new ReadAhead(),
    msgs: new MsgsCache(),
    checks: new FrameChecks(),
    states,
    // Counted as connections come and go: every hello asks, and a walk over all connections made a connect storm of
    // 10,000 spend 3 of its 10 CPU seconds here.
    connectionsOf: (recipient: string) => perRecipient.get(recipient) ?? 0,
    countRecipient: (recipient: string, delta: 1 | -1) => {
      const n = (perRecipient.get(recipient) ?? 0) + delta;
      if (n > 0) perRecipient.set(recipient, n);
      else perRecipient.delete(recipient);
    },
    onClose: (s: Connection) => sessions.delete(s),
    hellos: new Gate(HELLOS_IN_FLIGHT),
    sse: new SseCache(),
  };
  const serveReader = async (reader: SseStream | PollRequest, hello: HelloFrame) => {
    if (closing) throw new DpsError('unavailable', 'the server is shutting down');
    sessions.add(reader);
    return reader.serve(hello);
  };

  let closing: Promise<void> | null = null;
  const servers = new Set<Server>();
  /** An upgrade handler for `path`; an attached one leaves other paths to the app's other listeners. */
  const upgrade = (path: string, attached: boolean) => (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const at = (req.url ?? '/').split('?')[0];
    if (at !== path && attached) return;
    const origin = req.headers.origin;
    let refuse = at !== path ? '404 Not Found' : closing ? '503 Service Unavailable' : '';
    if (!refuse && origin && !originAllowed(origin, req.headers.host, config.allowedOrigins, auth.enabled)) refuse = '403 Forbidden';
    if (refuse) {
      socket.end(`HTTP/1.1 ${refuse}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sessions.add(new Session(ws, deps));
    });
  };
  const handleUpgrade = upgrade(config.wsPath, false);
  janitor.start();
  const outbox = config.outboxUrl
    ? new OutboxRelay({
        url: config.outboxUrl,
        table: config.outboxTable,
        pollMs: config.outboxPollMs,
        batch: config.outboxBatch,
        // Longer than any wait of a healthy relay: its polls, and a publish answered within DPS_REDIS_TIMEOUT.
        silentMs: Math.max(5 * config.outboxPollMs, 2 * config.redisTimeoutMs),
        log,
        publish: (ch, data, key) => store.publish(ch, data, key),
        flush: () => store.flushPublishes(),
      })
    : null;
  outbox?.start();
  if (!auth.enabled) log.warn('auth is off: any client may subscribe to and publish on any channel (set DPS_JWT_SECRET to turn it on)');

  const close = () => {
    closing ??= (async () => {
      stopUpkeep();
      clearInterval(modePoll);
      liveness.stop();
      await outbox?.stop();
      const closed = [...servers].map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
      // Acks first, so clients that move to another node resume from where they really are.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...sessions].map((s) => s.shutdown())),
        new Promise((resolve) => {
          timer = setTimeout(resolve, SHUTDOWN_ACK_WAIT_MS);
        }),
      ]);
      clearTimeout(timer);
      for (const s of sessions) s.close(CloseCode.goingAway, 'server shutting down');
      streams.close();
      await janitor.stop();
      for (const s of servers) s.closeAllConnections();
      await Promise.all(closed);
      if (opts.ownsRedis) await store.markClean().catch(() => {});
      await bridge.close();
      await redis.quit().catch(() => redis.disconnect());
    })();
    return closing;
  };

  return {
    config,
    store,
    bridge,
    janitor,
    sessions,
    outbox,
    head: () => store.headPosition(),
    attach(server, o = {}) {
      server.on('upgrade', upgrade(o.path ?? config.wsPath, true));
    },
    handleUpgrade,
    handleRequest(req, res, next) {
      void routes(req, res, next);
    },
    async publish(ch, data, o = {}) {
      // The checks of a `pub` frame: a bad channel, key or value is a bad_request, never a broken message.
      const checked = toClientFrame({ op: 'pub', ch, data, key: o.key });
      if (!checked.ok) throw new DpsError('bad_request', checked.message);
      const r = await store.publish(ch, data, o.key);
      return r.dup ? { id: r.id, dup: true } : { id: r.id };
    },
    async listen(port = 0, host = '127.0.0.1') {
      const server = createServer((req, res) => void routes(req, res));
      // At the limit a worker's new connections go to another worker (node:cluster routes them); a single process closes them.
      if (config.maxConnections > 0) server.maxConnections = config.maxConnections;
      server.on('upgrade', handleUpgrade);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
      // Its own server: closed with the instance.
      servers.add(server);
      const bound = (server.address() as AddressInfo).port;
      return { server, port: bound, url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}` };
    },
    close,
  };
}
