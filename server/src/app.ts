// Wires one server: Redis connections, store, bridge, janitor, HTTP and the WebSocket upgrade.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloseCode } from '@durable-pubsub/client-sdk/protocol';
import { WebSocketServer } from 'ws';
import { createAuthenticator } from './auth';
import { Bridge } from './bridge';
import type { Config } from './config';
import { BurstCorker } from './cork';
import { httpHandler } from './http';
import { Janitor } from './janitor';
import { createLogger, type Logger } from './log';
import { createMetrics, createStats } from './metrics';
import { commandConnection, connect, subscriberConnection } from './redis/connect';
import { subMember } from './redis/keys';
import { Liveness } from './redis/liveness';
import { ReadAhead } from './replay';
import { Session } from './session';
import { stateCounts } from './session-state';
import { Store } from './store';
import { MsgsCache } from './wire';

export interface App {
  server: Server;
  store: Store;
  bridge: Bridge;
  janitor: Janitor;
  sessions: Set<Session>;
  /** the bound port (useful with PORT=0) */
  port: number;
  url: string;
  stop(): Promise<void>;
}

export interface AppOptions {
  redisUrl: string;
  log?: Logger;
  /** a built web app served at / (the demo dashboard) */
  staticDir?: string;
  /** this process owns the Redis server and stops it right after: mark the log as cleanly flushed */
  ownsRedis?: boolean;
}

const TOUCH_EVERY_MS = 30_000;
/** how long a graceful stop waits for acks to be stored before it closes the sockets anyway */
const SHUTDOWN_ACK_WAIT_MS = 3000;

/**
 * Cross-site WebSocket hijacking guard: a listed origin, or with no list any
 * origin while auth is off and the server's own host while it is on.
 * Clients that send no Origin (not browsers) are not affected.
 */
function originAllowed(origin: string, host: string | undefined, allowed: string[] | undefined, authOn: boolean): boolean {
  if (allowed) return allowed.includes(origin);
  if (!authOn) return true;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

export async function startApp(config: Config, opts: AppOptions): Promise<App> {
  const log = opts.log ?? createLogger();
  const redis = commandConnection(opts.redisUrl, config.redisTimeoutMs);
  const sub = subscriberConnection(opts.redisUrl, redis, config.redisTimeoutMs);
  redis.on('error', (err) => log.debug('redis error', { err: String(err) }));
  sub.on('error', (err) => log.debug('redis subscriber error', { err: String(err) }));
  const auth = createAuthenticator(config);
  const stats = createStats();
  const store = new Store(redis, { ...config, observe: stats.observeRedis, stats });
  const bridge = new Bridge(sub, store.keys, config.bridgeWideThreshold);
  // Any of these may mean another Redis server holds the log now: check before the next id is handed out.
  for (const event of ['close', '-node', 'node error']) redis.on(event, () => store.suspect());
  await Promise.all([connect(redis), connect(sub)]);
  await store.init();
  const installFunctions = async () => {
    const why = await store.installFunctions();
    if (why) log.warn('could not install the dps Function library: FCALL dps_publish is not available (needs Redis >= 7)', { err: why });
  };
  await installFunctions();
  const liveness = new Liveness({
    timeoutMs: config.redisTimeoutMs,
    probeCommand: () => store.clock(),
    commandReady: () => redis.status === 'ready',
    subscriber: sub,
  });
  liveness.start();
  for (const [conn, name] of [
    [redis, 'command'],
    [sub, 'subscriber'],
  ] as const)
    conn.on('error', (err) => {
      // ioredis destroyed a socket that answered nothing for half of DPS_REDIS_TIMEOUT (connect.ts): it reconnects.
      if (/^Socket timeout/.test(err.message)) {
        stats.redisSilent++;
        log.warn(`the Redis ${name} connection went silent; replacing it`, { timeoutMs: config.redisTimeoutMs });
      }
    });
  store.on('recovered', (info) => {
    void installFunctions();
    if (info.outcome === 'reset')
      log.warn('Redis restarted or failed over and may have lost acknowledged writes: new epoch, clients replay what is retained', info);
    else
      log.info(info.outcome === 'kept' ? 'Redis restarted; it persists every write, so the log is whole' : 'a new log was started', info);
  });

  const sessions = new Set<Session>();
  /** open connections per state, counted by the sessions' transitions */
  const states = stateCounts();
  bridge.on('down', () => {
    store.suspect();
    log.warn('lost the Redis subscription; connections will catch up from the store');
    for (const s of sessions) s.liveLost();
  });
  bridge.on('up', () => log.info('Redis subscription is live'));
  bridge.on('invalid', (id, ch) => {
    stats.invalidFrames++;
    log.error('a live message is not one valid JSON message (written around the server); its readers get a gap', { id, ch });
  });
  store.on('epoch', (epoch, previous) => {
    log.warn('the log was lost and started anew (new epoch); closing connections', { epoch, previous });
    for (const s of sessions) if (s.epoch && s.epoch !== epoch) s.close(CloseCode.goingAway, 'the log was reset (new epoch), reconnect');
  });

  // Dead connections (their peer vanished without a close) are gone within two intervals.
  const heartbeat = setInterval(() => {
    for (const s of sessions) s.heartbeat();
  }, config.heartbeatIntervalMs);
  const janitor = new Janitor(store, config, log, () => new Set(connections().keys()));
  const touch = setInterval(
    () => {
      store.subscriptions.touch(connections().keys()).catch(() => {});
    },
    Math.min(TOUCH_EVERY_MS, (config.recipientTtlSec * 1000) / 4),
  );

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
  const registry = createMetrics({
    stats,
    connectionsByState: () => states,
    topLag: async () => {
      if (!config.metricsLagTop) return [];
      const all = await store.subscriptions.stats(await store.channels(), connections());
      return all.sort((a, b) => b.lag - a.lag).slice(0, config.metricsLagTop);
    },
  });
  const server = createServer(
    httpHandler({
      store,
      bridge,
      config,
      log,
      staticDir: opts.staticDir,
      connections,
      registry,
      auth,
      redisUp: (link) => liveness.up(link),
    }),
  );
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.maxFrame, perMessageDeflate: false, clientTracking: false });
  const deps = {
    store,
    bridge,
    config,
    log,
    stats,
    auth,
    // Per server, never per process: two servers in one process share none of these.
    corker: new BurstCorker(),
    readAhead: new ReadAhead(),
    msgs: new MsgsCache(),
    states,
    connectionsOf: (recipient: string) => {
      let n = 0;
      for (const s of sessions) if (s.recipient === recipient && !s.closed && s.state !== 'hello') n++;
      return n;
    },
    onClose: (s: Session) => sessions.delete(s),
  };
  server.on('upgrade', (req, socket, head) => {
    const path = (req.url ?? '/').split('?')[0];
    const origin = req.headers.origin;
    let refuse = path !== config.wsPath ? '404 Not Found' : '';
    if (!refuse && origin && !originAllowed(origin, req.headers.host, config.allowedOrigins, auth.enabled)) refuse = '403 Forbidden';
    if (refuse) {
      socket.end(`HTTP/1.1 ${refuse}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sessions.add(new Session(ws, deps));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  janitor.start();
  const port = (server.address() as AddressInfo).port;

  if (!auth.enabled) log.warn('auth is off: any client may subscribe to and publish on any channel (set DPS_JWT_SECRET to turn it on)');

  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      clearInterval(touch);
      clearInterval(heartbeat);
      liveness.stop();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
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
      await janitor.stop();
      server.closeAllConnections();
      await closed;
      if (opts.ownsRedis) await store.markClean().catch(() => {});
      await bridge.close();
      await redis.quit().catch(() => redis.disconnect());
    })();
    return stopping;
  };
  return { server, store, bridge, janitor, sessions, port, url: `http://${config.host}:${port}`, stop };
}
