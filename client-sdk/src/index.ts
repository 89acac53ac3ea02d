// Public entry of the durable-pubsub client SDK (the tab relay is an entry of its own: `@durable-pubsub/client-sdk/tabs`).
export { backoff } from './backoff';
export { Client, ClientError, createClient } from './client';
export type * from './client-types';
export { CloseCode, ERROR_CODES, type ErrorCode, PROTOCOL_VERSION } from './protocol/codes';
export type { Json } from './protocol/types';
export { localStorageStorage, memoryStorage, type Position, type PositionStorage } from './storage';
