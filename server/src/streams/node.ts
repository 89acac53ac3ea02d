// Durable Streams on one server: its routes, and the subscriber through which a change to a stream on any node wakes
// this node's long-polls and SSE readers.
import type { Redis } from 'ioredis';
import type { Logger } from '../log';
import { connect, subscriberConnection } from '../redis/connect';
import { type StreamRouteDeps, StreamRoutes } from './routes';

export interface NodeStreams {
  routes: StreamRoutes;
  /** stops the routes' timers and the wake subscriber */
  close(): void;
}

export function nodeStreams(deps: StreamRouteDeps, redis: { url: string; command: Redis; timeoutMs: number }, log: Logger): NodeStreams {
  const routes = new StreamRoutes(deps);
  // A subscriber of its own (the bridge owns its connection's patterns); it resubscribes on each reconnect, and
  // readers look again every DPS_STREAM_RECHECK anyway.
  const wake = subscriberConnection(redis.url, redis.command, redis.timeoutMs, undefined, 'dps-stream-wake');
  wake.on('error', (err) => log.debug('redis stream wake subscriber error', { err: String(err) }));
  wake.on('ready', () => {
    // SUBSCRIBE, not PSUBSCRIBE: a pattern would count in PUBSUB NUMPAT, which a namespace's first node reads as a node
    // of an older version listening classic (pubsub-mode.ts).
    wake.subscribe(deps.store.keys.streamWake).catch((err) => log.debug('stream wake subscribe failed', { err: String(err) }));
  });
  wake.on('messageBuffer', (_channel, path) => routes.wakeups.notify(path.toString()));
  connect(wake).catch((err) => log.debug('stream wake subscriber did not connect', { err: String(err) }));
  return {
    routes,
    close() {
      routes.close();
      wake.disconnect();
    },
  };
}
