// The server's one error class: a stable protocol `code`, mapped to HTTP statuses and error frames.
import { type ErrorCode, HTTP_STATUS } from '@durable-pubsub/client-sdk/protocol';

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

/** Anything thrown while talking to Redis becomes `unavailable` (Redis down) or `internal`. */
export function toDpsError(err: unknown, redisReady: boolean): DpsError {
  if (err instanceof DpsError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (!redisReady || /connection|stream isn't writeable|ECONNREFUSED|ECONNRESET|MaxRetriesPerRequest/i.test(message))
    return new DpsError('unavailable', 'Redis is unreachable', { cause: err });
  return new DpsError('internal', 'internal error', { cause: err });
}
