// Public entry of the durable-pubsub client SDK.
export { backoff } from './backoff';
export { Client, ClientError, createClient } from './client';
export type * from './client-types';
export { CloseCode, ERROR_CODES, type ErrorCode, PROTOCOL_VERSION } from './protocol/codes';
export type { Json } from './protocol/types';
export { localStorageStorage, memoryStorage, type Position, type PositionStorage } from './storage';
