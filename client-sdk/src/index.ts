// Public entry of the durable-pubsub client SDK.
export { backoff } from './backoff';
export {
  Client,
  ClientError,
  type ClientEvents,
  type ClientOptions,
  type ClientState,
  createClient,
  type Handler,
  type Message,
  type MessageContext,
  type Subscription,
  type WebSocketConstructor,
  type WebSocketLike,
} from './client';
export { CloseCode, ERROR_CODES, type ErrorCode, PROTOCOL_VERSION } from './protocol/codes';
export type { Json } from './protocol/types';
export { localStorageStorage, memoryStorage, type Position, type PositionStorage } from './storage';
