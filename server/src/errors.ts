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
const { AbortError } = redisErrors;

/**
 * An error from a request: Redis unreachable (not connected, or the connection
 * dropped with the command in flight) is `unavailable`, so the client may retry;
 * anything else (a Redis reply error, a bug) is `internal`.
 */
export function toDpsError(err: unknown, redisReady: boolean): DpsError {
  if (err instanceof DpsError) return err;
  if (!redisReady || err instanceof AbortError) return new DpsError('unavailable', 'Redis is unreachable', { cause: err });
  return new DpsError('internal', 'internal error', { cause: err });
}
