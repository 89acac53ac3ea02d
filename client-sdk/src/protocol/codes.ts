// Error codes and WebSocket close codes of wire protocol v1 (PROTOCOL.md).

export const PROTOCOL_VERSION = 1 as const;

export const ERROR_CODES = ['bad_request', 'unauthorized', 'forbidden', 'too_large', 'rate_limited', 'unavailable', 'internal'] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const CloseCode = {
  goingAway: 1001,
  tooLarge: 1009,
  protocolViolation: 4400,
  unauthorized: 4401,
  forbidden: 4403,
  helloTimeout: 4408,
  rateLimited: 4429,
  slowConsumer: 4508,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** HTTP status for each error code of the HTTP API. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  too_large: 413,
  rate_limited: 429,
  unavailable: 503,
  internal: 500,
};

/** Channel names are non-empty UTF-8 strings of at most this many bytes. */
export const MAX_CHANNEL_BYTES = 256;
