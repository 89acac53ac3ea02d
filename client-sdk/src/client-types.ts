// The client's public types: options, states, messages, events, error codes, the WebSocket it needs, and the tab relay's seam.
import type { ErrorCode } from './protocol/codes';
import type { ClientFrame, Json, PubFrame, SubFrame, UnsubFrame } from './protocol/types';
import type { Position, PositionStorage } from './storage';

export type ClientState = 'connecting' | 'catching-up' | 'live' | 'reconnecting' | 'closed';

/**
 * The `code` of an `error` event and of a ClientError: the server's (an `error` frame; a 4401 or 4403 close as
 * `unauthorized` or `forbidden`), or the SDK's own: `handler` (a handler threw or rejected: the message comes again),
 * `bad_frame` (the server sent a frame that is not a v1 server frame: the client resumes before it, and the server
 * checks each replayed message), `token` (getToken failed), `no_websocket` (no transport it may use: no WebSocket, and no SSE to
 * fall back to) and `bad_url` (the WebSocket constructor threw, and no SSE to fall back to): the client closes;
 * `closed` (the client is closed), `queue_full` (more than maxQueue publishes pending).
 */
export type ClientErrorCode = ErrorCode | 'handler' | 'bad_frame' | 'token' | 'no_websocket' | 'bad_url' | 'closed' | 'queue_full';

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

/** Every event a client emits, and its payload: `client.on` takes these names only. */
export interface ClientEvents {
  state: { oldState: ClientState; newState: ClientState; reason?: string };
  /** messages of `ch` with after < id <= upTo were removed by retention before they were processed */
  gap: { ch: string; after: number; upTo: number };
  /** the server's log was lost (new epoch): messages after `lastAckedId` of the old epoch are gone */
  reset: { oldEpoch: string; newEpoch: string; lastAckedId: number };
  error: { code: ClientErrorCode; message: string; cause?: unknown };
}

/** The part of the WebSocket API the client uses: the browser's, or `ws` in Node. */
/**
 * A handler property as a method's parameter is checked (both ways): the browser's and `ws`'s sockets type their
 * events more precisely than the SDK needs, and must still be accepted.
 */
type SocketHandler<E> = { bivariant(ev: E): void }['bivariant'];

export interface WebSocketLike {
  readonly readyState: number;
  onopen: SocketHandler<unknown> | null;
  onmessage: SocketHandler<{ data: unknown }> | null;
  onclose: SocketHandler<{ code: number; reason: string }> | null;
  onerror: SocketHandler<unknown> | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** How a connection reaches the server: a WebSocket, or Server-Sent Events to receive and HTTP requests to send. */
export type TransportName = 'websocket' | 'sse';

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
  /**
   * Where to resume, instead of the saved position: the answer of `GET /v1/head` (`{epoch, id}`) taken before the page
   * loaded its state, so that nothing published after that state is missed (what the state already holds may come again).
   */
  position?: { epoch: string; id: number };
  ackMode?: 'auto' | 'manual';
  WebSocket?: WebSocketConstructor;
  /**
   * The transports it may use (default both). With both, a WebSocket that cannot be made or closes before it opens
   * (blocked by a proxy, refused) makes the next attempt use SSE at once; while live on SSE, a WebSocket is tried
   * again after wsRetry ms (doubling up to 5 minutes), and once one opens the client moves back to it. SSE needs `sse`.
   */
  transports?: TransportName[];
  /** The SSE transport: `SseSocket` from `@durable-pubsub/client-sdk/sse` (an entry of its own, like the tab relay's). */
  sse?: WebSocketConstructor;
  /** The server's HTTP base for SSE (e.g. `https://host/prefix`); by default each url's origin over http(s). */
  httpUrl?: string;
  /** ms on SSE before the first try of a WebSocket again (default 30,000; doubled after each failed try, up to 5 minutes) */
  wsRetry?: number;
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
  /**
   * Tabs of this browser share one socket per (url, recipient): a leader tab connects and relays. Pass `tabRelay`
   * from `@durable-pubsub/client-sdk/tabs` (an entry of its own, so that apps which do not share tabs do not ship it).
   */
  shareAcrossTabs?: TabRelayFactory;
}

// The seam between the client and a tab relay (tabs.ts): what each may reach of the other. Apps only pass `tabRelay`.

/** Makes a client's tab relay; null where the browser cannot share (then the tab keeps its own socket). */
export type TabRelayFactory = (host: TabRelayHost) => TabRelay | null;

/** What a client lets its tab relay reach. */
export interface TabRelayHost {
  /** `dps:<first url>|<recipient>`: the tabs that share one socket */
  readonly key: string;
  state(): ClientState;
  /** the client's one state writer (a follower takes the leader's state) */
  setState(state: ClientState): void;
  emit<K extends 'gap' | 'reset'>(event: K, e: ClientEvents[K]): void;
  readonly delivery: {
    /** this tab's patterns */
    readonly subs: ReadonlyMap<string, unknown>;
    /** what this tab's handlers processed; own() loads it from storage the first time */
    position: Position | null;
    own(): Position | null;
    /** the highest id this tab's handlers saw */
    delivered: number;
    /** runs this tab's handlers on a relayed message, in order; nothing more of `from` once it is broken */
    deliver(msg: Message, from: { broken?: boolean }): void;
    /** saves and acks within ackInterval */
    ackSoon(): void;
  };
  readonly transport: {
    /** opens the socket (this tab became the leader) */
    start(): void;
    /** the connection once welcomed; `at`: the highest id its stream delivered */
    readonly welcomed: { readonly at: number } | null;
    send(frame: ClientFrame): void;
    /** closes the socket and opens another at once (it resumes from the lowest position of the tabs) */
    restart(reason: string): void;
  };
  publish(ch: string, data: Json, key: string): Promise<number>;
  /** publishes waiting for an answer, by ref */
  readonly pubs: ReadonlyMap<string, { readonly frame: PubFrame }>;
  /** answers a waiting publish: its id, or an error */
  settle(ref: string, result: number | { code: ClientErrorCode; message: string }): void;
}

/** What the client asks of its tab relay. */
export interface TabRelay {
  /** a follower has no socket (the leader's messages come over the relay); the leader's socket serves every tab */
  readonly role: 'leader' | 'follower';
  /** adds the other tabs' patterns (the socket serves them too) */
  patterns(into: Set<string>): void;
  /** the lowest of `own` and the other tabs' positions in its epoch: where the socket resumes, how far it acks */
  floor(own: Position | null): Position | null;
  /**
   * A request of this tab: a follower hands it to the leader (a sub or unsub as its new set of patterns); the leader
   * sends it on the socket, but no sub or unsub of a pattern that another tab's view still needs.
   */
  send(frame: SubFrame | UnsubFrame | PubFrame): void;
  /** the position was saved: a follower tells the leader (true: it acks nothing itself) */
  done(position: Position): boolean;
  /** a welcome resumes after `resumeFrom` in `epoch`: true when some tab is behind it */
  behind(epoch: string, resumeFrom: number): boolean;
  /** what the leader's socket delivered, for the other tabs */
  msg(msg: Message, from: number): void;
  gap(gap: ClientEvents['gap']): void;
  reset(reset: ClientEvents['reset'], resumeFrom: number): void;
  state(state: ClientState): void;
  close(): void;
}
