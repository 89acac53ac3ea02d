// ioredis connections with the failure behaviour the guarantees need (no silent queueing or resending).
import { Redis, type RedisOptions } from 'ioredis';
import { defineScripts, type ScriptedRedis } from './scripts';

const common: RedisOptions = {
  // RESP2 keeps pub/sub on its own connection with plain pmessage replies.
  protocol: 2,
  lazyConnect: true,
  retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
};

/**
 * The command connection. A publish must never be stored "later": commands are
 * not queued while Redis is down (they fail at once, as `unavailable`), and a
 * command in flight when the connection drops is failed, not resent.
 */
export function commandConnection(url: string): ScriptedRedis {
  const redis = new Redis(url, {
    ...common,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableAutoPipelining: true,
    connectionName: 'dps-command',
  });
  return defineScripts(redis);
}

/** The subscriber connection: the bridge re-subscribes itself, so it knows when live is live again. */
export function subscriberConnection(url: string): Redis {
  return new Redis(url, {
    ...common,
    autoResubscribe: false,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    connectionName: 'dps-subscriber',
  });
}

/** Resolves once the connection is ready; rejects after `timeoutMs`. */
export async function connect(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return;
  const timer = setTimeout(() => redis.disconnect(), timeoutMs);
  try {
    if (redis.status === 'wait') await redis.connect();
    else
      await new Promise<void>((resolve, reject) => {
        redis.once('ready', resolve);
        redis.once('end', () => reject(new Error('Redis connection ended')));
      });
  } finally {
    clearTimeout(timer);
  }
}
