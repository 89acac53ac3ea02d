// The server's one error class: a stable protocol `code`, mapped to HTTP statuses and error frames.
import { type ErrorCode, HTTP_STATUS } from '@durable-pubsub/client-sdk/protocol';
import redisErrors from 'redis-errors';

export class DpsError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DpsError';
    this.code = code;
  }
  get status(): number {
    return HTTP_STATUS[this.code];
  }
}

// ioredis's own error classes (CommonJS): MaxRetriesPerRequestError, a command aborted by a dropped connection, extends AbortError.
const { AbortError, RedisError, ReplyError } = redisErrors;

/**
 * Redis's own error codes (the reply's first word) for "not now": loading its
 * data after a restart, a Cluster or replica in the middle of a failover, a
 * demoted primary. The command did not run; the client may retry.
 */
const TRANSIENT = new Set(['LOADING', 'BUSY', 'MASTERDOWN', 'CLUSTERDOWN', 'TRYAGAIN', 'READONLY', 'NOREPLICAS', 'UNBLOCKED']);

/** Redis refusing writes (its reply's first word): the command did nothing. */
const REFUSED_WRITES: Record<string, string> = {
  OOM: 'Redis refuses writes: it is out of memory (maxmemory with noeviction); nothing was stored',
  MISCONF: 'Redis refuses writes: it cannot persist to disk (MISCONF); nothing was stored',
  DEADLINE: 'Redis answered too late (DPS_REDIS_TIMEOUT); nothing was stored',
};

/**
 * The command certainly did not run: Redis refused it (a reply error), or it was never written (ioredis refuses at once
 * while not connected, as configured in connect.ts; it says so only in its message). Any other failure may have
 * reached Redis.
 */
export function neverRan(err: unknown): boolean {
  return err instanceof ReplyError || (err instanceof Error && err.message.startsWith("Stream isn't writeable"));
}

/**
 * An error from a request: Redis unreachable (not connected, or the connection
 * dropped with the command in flight) is `unavailable`, so the client may retry;
 * anything else (a Redis reply error, a bug) is `internal`.
 */
export function toDpsError(err: unknown, redisReady: boolean): DpsError {
  if (err instanceof DpsError) return err;
  if (!redisReady || err instanceof AbortError) return new DpsError('unavailable', 'Redis is unreachable', { cause: err });
  if (err instanceof ReplyError) {
    const word = err.message.split(' ', 1)[0] as string;
    if (word in REFUSED_WRITES) return new DpsError('unavailable', REFUSED_WRITES[word] as string, { cause: err });
    if (TRANSIENT.has(word)) return new DpsError('unavailable', 'Redis is not serving right now (restart or failover)', { cause: err });
    return new DpsError('internal', 'internal error', { cause: err });
  }
  // ioredis fails a command on a closed connection (a Cluster node that died while the Cluster is still
  // "ready") with a plain Error, and gives up on a Cluster with its RedisError subclasses; our own code
  // throws DpsError or a built-in subclass (TypeError, …), so those stay `internal`.
  if (err instanceof RedisError || (err instanceof Error && Object.getPrototypeOf(err) === Error.prototype))
    return new DpsError('unavailable', 'Redis is unreachable', { cause: err });
  return new DpsError('internal', 'internal error', { cause: err });
}
