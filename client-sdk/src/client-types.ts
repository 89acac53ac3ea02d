// The client's public types: options, states, messages, events, and the WebSocket it needs.
import type { Json } from './protocol/types';
import type { PositionStorage } from './storage';

export type ClientState = 'connecting' | 'catching-up' | 'live' | 'reconnecting' | 'closed';

export interface Message {
  id: number;
  ch: string;
  data: Json;
  ts: number;
  /** sent during catch-up (replayed from the store) rather than live */
  replayed: boolean;
}
export interface MessageContext {
  /** manual ack mode: marks this message and every earlier one processed */
  ack(): void;
}
export type Handler = (msg: Message, ctx: MessageContext) => void | Promise<void>;

export interface Subscription {
  readonly pattern: string;
  unsubscribe(): void;
}

export interface ClientEvents {
  state: { oldState: ClientState; newState: ClientState; reason?: string };
  /** messages of `ch` with after < id <= upTo were removed by retention before they were processed */
  gap: { ch: string; after: number; upTo: number };
  /** the server's log was lost (new epoch): messages after `lastAckedId` of the old epoch are gone */
  reset: { oldEpoch: string; newEpoch: string; lastAckedId: number };
  error: { code: string; message: string; cause?: unknown };
  [key: string]: unknown;
}

/** The part of the WebSocket API the client uses: the browser's, or `ws` in Node. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ClientOptions {
  /** one server, or several (nodes of one deployment): each connection attempt takes the next */
  url: string | string[];
  recipient: string;
  token?: string;
  /** called before every connection, and again before the token expires (refreshed in-band) */
  getToken?: () => string | Promise<string>;
  storage?: PositionStorage;
  /** where a recipient seen for the first time starts (default: head) */
  from?: 'head' | 'earliest';
  ackMode?: 'auto' | 'manual';
  WebSocket?: WebSocketConstructor;
  /** ms of silence before a ping; a connection silent for about pingInterval + pongTimeout (checked every pongTimeout / 2) is dead */
  pingInterval?: number;
  pongTimeout?: number;
  backoffMin?: number;
  backoffMax?: number;
  /** acks (and position saves) are sent at most this often, or every ackBatch messages */
  ackInterval?: number;
  ackBatch?: number;
  /** publishes waiting for a connection, at most */
  maxQueue?: number;
  /** tabs of this browser share one socket per (url, recipient): a leader tab connects and relays */
  shareAcrossTabs?: boolean;
}
