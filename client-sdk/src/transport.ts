// The socket: opens it (the urls in turn, a fresh token, SSE when no WebSocket opens), says hello, reads frames, checks liveness, reconnects with backoff, refreshes the token in-band.
import { backoff } from './backoff';
import type { ClientErrorCode, ClientEvents, ClientOptions, ClientState, WebSocketConstructor, WebSocketLike } from './client-types';
import type { CloseCode } from './protocol/codes';
import { checkServerFrame } from './protocol/decode-server';
import type { ClientFrame, HelloFrame, ServerFrame } from './protocol/types';

const OPEN = 1;
// The close codes the transport acts on, typed by the protocol's table (importing its value would ship all of it).
const GOING_AWAY: typeof CloseCode.goingAway = 1001;
const UNAUTHORIZED: typeof CloseCode.unauthorized = 4401;
const FORBIDDEN: typeof CloseCode.forbidden = 4403;
/** The longest wait between two tries of a WebSocket while on SSE. */
const PROBE_MAX = 300_000;

/** One connection, from its socket's creation to its close: its phase, and what its stream delivered. */
export interface Conn {
  readonly ws: WebSocketLike;
  /** the socket is the SSE transport's */
  readonly sse: boolean;
  /** the patterns its hello asked for */
  subs: string[];
  /** opening: no welcome yet; catching-up: welcomed, replaying; live: past the server's `live` frame */
  phase: 'opening' | 'catching-up' | 'live';
  /** when its last frame arrived (a ping goes out after pingInterval of silence) */
  rxAt: number;
  /** where its stream resumed (the welcome's resumeFrom), and the highest id it delivered */
  from: number;
  at: number;
  /** a handler failed on one of its messages, or it sent a frame that cannot be read: nothing more of it is processed */
  broken?: boolean;
  ping?: ReturnType<typeof setInterval>;
}

/** What the transport asks of the client. */
export interface TransportHost {
  state(): ClientState;
  setState(state: ClientState, reason?: string): void;
  emit(event: 'error', e: ClientEvents['error']): void;
  /** the hello's patterns and resume point */
  resume(): Pick<HelloFrame, 'subs' | 'epoch' | 'lastAckedId'>;
  /** a frame of `conn`; null: one that cannot be read (nothing after it may be processed) */
  frame(f: ServerFrame | null, conn: Conn): void;
  /** the socket went away (not by close()) */
  down(): void;
  /** fails the publishes waiting for an answer (the server refused the client for good) */
  failPubs(code: ClientErrorCode, message: string): void;
  close(): void;
}

type Options = Required<
  Pick<ClientOptions, 'recipient' | 'from' | 'pingInterval' | 'pongTimeout' | 'backoffMin' | 'backoffMax' | 'transports' | 'wsRetry'>
> &
  Pick<ClientOptions, 'token' | 'getToken' | 'WebSocket' | 'sse' | 'httpUrl'>;

/**
 * The one place a server frame is read (the protocol's guard): a frame; undefined for a frame of an op this version
 * does not know (a newer server's: ignored); null when the text is not JSON or not a valid server frame (then nothing
 * after it is processed and the client resumes with `checked`).
 */
export function parseFrame(text: string): ServerFrame | null | undefined {
  let r: ReturnType<typeof checkServerFrame>;
  try {
    r = checkServerFrame(JSON.parse(text));
  } catch {
    return null;
  }
  return typeof r === 'object' ? r : r === 'unknown_op' ? undefined : null;
}

/** Seconds-since-epoch `exp` of a JWT, or null. */
function tokenExp(token: string): number | null {
  try {
    const payload = token.split('.')[1] ?? '';
    const exp = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))).exp;
    return typeof exp === 'number' ? exp : null;
  } catch {
    return null;
  }
}

export class Transport {
  /** the socket's connection; null between connections */
  conn: Conn | null = null;
  readonly #o: Options;
  readonly #urls: string[];
  readonly #host: TransportHost;
  /** failed attempts since the last `live` (the backoff grows with them), and sockets opened (the next takes the next url) */
  #attempt = 0;
  #opened = 0;
  /** met a frame it could not read: later hellos ask the server to check replayed messages, one a frame */
  #checked = false;
  #token: string | undefined;
  /** the next attempt uses SSE: the last WebSocket never opened, or the last SSE stream was welcomed */
  #sse = false;
  /** ms before the next try of a WebSocket while on SSE */
  #probeIn: number;
  #reconnect: ReturnType<typeof setTimeout> | undefined;
  #refresh: ReturnType<typeof setTimeout> | undefined;
  #probe: ReturnType<typeof setTimeout> | undefined;
  readonly #onOnline = () => {
    if (this.#host.state() === 'reconnecting') this.#retry(0);
  };

  constructor(o: Options, urls: string[], host: TransportHost) {
    this.#o = o;
    this.#urls = urls;
    this.#host = host;
    this.#token = o.token;
    this.#probeIn = o.wsRetry;
  }

  /** The connection once the server welcomed it: requests (sub, pub, ack) go out on it. */
  get welcomed(): Conn | null {
    const c = this.conn;
    return c && c.phase !== 'opening' ? c : null;
  }

  /** Connects, and keeps connected until stop(); the browser's `online` event ends a backoff wait. */
  start(): void {
    globalThis.addEventListener?.('online', this.#onOnline);
    void this.#connect();
  }

  stop(): void {
    clearTimeout(this.#reconnect);
    clearTimeout(this.#refresh);
    clearTimeout(this.#probe);
    globalThis.removeEventListener?.('online', this.#onOnline);
    this.#drop(1000, 'client closed');
  }

  /** Closes the socket and opens another at once. */
  restart(reason: string): void {
    this.#drop(1000, reason);
    this.#retry(0);
  }

  send(frame: ClientFrame): void {
    const ws = this.conn?.ws;
    if (ws?.readyState === OPEN) ws.send(JSON.stringify(frame));
  }

  async #connect(): Promise<void> {
    const h = this.#host;
    h.setState(this.#attempt || this.#opened ? 'reconnecting' : 'connecting');
    const { getToken } = this.#o;
    if (getToken) {
      try {
        this.#token = await getToken();
      } catch (cause) {
        if (h.state() === 'closed') return;
        h.emit('error', { code: 'token', message: 'getToken failed', cause });
        return this.#retry();
      }
      if (h.state() === 'closed') return;
    }
    const WS = this.#WS();
    const SSE = this.#o.transports.includes('sse') ? this.#o.sse : undefined;
    const url = this.#url();
    let ws: WebSocketLike | undefined;
    let cause: unknown;
    if (WS && !this.#sse)
      try {
        ws = new WS(url);
      } catch (e) {
        cause = e;
      }
    const sse = !ws && !!SSE;
    if (SSE && !ws) ws = new SSE(this.#o.httpUrl ?? url);
    if (!ws) {
      h.emit(
        'error',
        WS
          ? { code: 'bad_url', message: `cannot open ${url}`, cause }
          : { code: 'no_websocket', message: 'no WebSocket: pass options.WebSocket (e.g. from "ws"), or options.sse' },
      );
      return h.close();
    }
    this.#opened++;
    const conn: Conn = (this.conn = { ws, sse, subs: [], phase: 'opening', rxAt: 0, from: 0, at: 0 });
    let opened = false;
    ws.onopen = () => {
      opened = true;
      const checked = this.#checked;
      // Absent fields (undefined) are left out by JSON.stringify.
      const hello: HelloFrame = {
        op: 'hello',
        v: 1,
        recipient: this.#o.recipient,
        from: this.#o.from,
        token: this.#token,
        ...h.resume(),
        // Catch-up may come as msgs frames (one event for many messages), unless a frame could not be read:
        // then one message a frame, each checked by the server (a bad one comes as a gap), so no good one is lost.
        batch: checked ? undefined : true,
        checked: checked || undefined,
      };
      conn.subs = hello.subs;
      ws.send(JSON.stringify(hello));
      this.#armPing(conn);
    };
    ws.onmessage = (ev) => {
      const f = parseFrame(String(ev.data));
      if (f === undefined) return;
      if (!f) {
        // Nothing after it is processed (it may hold messages), nothing is acked past what was, and the client
        // resumes from there with the server checking each replayed message: never a skip on the SDK's own.
        this.#checked = true;
        return h.frame(null, conn);
      }
      conn.rxAt = Date.now();
      if (f.op === 'live') {
        this.#attempt = 0;
        if (sse) this.#probeLater();
        else this.#probeIn = this.#o.wsRetry;
      }
      h.frame(f, conn);
      // Once the welcome is taken (not when the client resumes again at once instead), and on each authed.
      if ((f.op === 'welcome' || f.op === 'authed') && this.welcomed === conn) this.#refreshToken();
    };
    ws.onclose = (ev) => {
      if (WS && SSE) {
        // A WebSocket that never opened (a proxy blocks it, the upgrade was refused): SSE next, at once. An SSE stream
        // that was never welcomed: a WebSocket next (the server, not the WebSocket, may have been down).
        this.#sse = sse ? conn.phase !== 'opening' : !opened;
        if (!sse && !opened) return this.#onClose(ev.code, ev.reason, 0);
      }
      this.#onClose(ev.code, ev.reason);
    };
    ws.onerror = () => {}; // onclose follows
  }

  #url(): string {
    return this.#urls[this.#opened % this.#urls.length] as string;
  }

  /** The WebSocket constructor, when the client may use one. */
  #WS(): WebSocketConstructor | undefined {
    return this.#o.transports.includes('websocket')
      ? (this.#o.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket)
      : undefined;
  }

  /** Live on SSE: tries a WebSocket after #probeIn ms (doubling after each failure); once one opens, moves to it. */
  #probeLater(): void {
    const WS = this.#WS();
    if (!WS || this.#probe) return;
    this.#probe = setTimeout(() => {
      this.#probe = undefined;
      if (!this.conn?.sse) return; // not on SSE now: the next SSE connection to go live tries again
      const failed = () => {
        this.#probeIn = Math.min(this.#probeIn * 2, PROBE_MAX);
        if (this.conn?.sse) this.#probeLater();
      };
      let p: WebSocketLike;
      try {
        p = new WS(this.#url());
      } catch {
        return failed();
      }
      p.onopen = () => {
        p.onclose = null;
        p.close(1000, 'probe');
        this.#sse = false;
        if (this.conn?.sse) this.restart('a WebSocket opens again');
      };
      p.onclose = failed;
      p.onerror = () => {};
    }, this.#probeIn);
  }

  /** Pings after pingInterval without a frame; dead after pongTimeout more. One timer per connection, not one per frame. */
  #armPing(conn: Conn): void {
    const { pingInterval: p, pongTimeout: t } = this.#o;
    conn.rxAt = Date.now();
    conn.ping = setInterval(() => {
      const quiet = Date.now() - conn.rxAt;
      if (quiet < p) return;
      if (quiet < p + t) return this.send({ op: 'ping' });
      // No frame for too long: the connection is dead even if the socket has not noticed.
      this.#drop(4000, 'no pong');
      this.#onClose(1006, 'no pong in time');
    }, t / 2);
  }

  #refreshToken(): void {
    clearTimeout(this.#refresh);
    const exp = this.#token ? tokenExp(this.#token) : null;
    const getToken = this.#o.getToken;
    if (!exp || !getToken) return;
    // Refresh a little before expiry: 30 s, or a fifth of a short lifetime.
    const inMs = exp * 1000 - Date.now();
    this.#refresh = setTimeout(
      async () => {
        try {
          this.#token = await getToken();
          this.send({ op: 'auth', token: this.#token });
        } catch (cause) {
          this.#host.emit('error', { code: 'token', message: 'getToken failed', cause });
        }
      },
      Math.max(1000, inMs - Math.min(30_000, inMs / 5)),
    );
  }

  /** Forgets the connection: its socket's events no longer reach the client. */
  #detach(): WebSocketLike | undefined {
    const c = this.conn;
    if (!c) return;
    c.ws.onopen = c.ws.onmessage = c.ws.onclose = null;
    clearInterval(c.ping);
    this.conn = null;
    return c.ws;
  }

  #drop(code: number, reason: string): void {
    this.#detach()?.close(code, reason);
  }

  /** The connection closed: reconnects after `delay` (by default: at once on 1001, else the backoff's next), or closes the client for good on 4401 and 4403. */
  #onClose(code: number, reason: string, delay?: number): void {
    const h = this.#host;
    this.#detach();
    clearTimeout(this.#refresh);
    h.down();
    if (h.state() === 'closed') return;
    if (code === UNAUTHORIZED || code === FORBIDDEN) {
      const c = code === FORBIDDEN ? 'forbidden' : 'unauthorized';
      h.failPubs(c, reason || 'refused');
      h.emit('error', { code: c, message: reason });
      return h.setState('closed', reason || String(code));
    }
    this.#retry(code === GOING_AWAY ? 0 : delay);
  }

  /** Connects again after `delay` ms (by default the backoff's next delay). */
  #retry(delay = backoff(this.#attempt++, this.#o.backoffMin, this.#o.backoffMax)): void {
    clearTimeout(this.#reconnect);
    this.#host.setState('reconnecting');
    this.#reconnect = setTimeout(() => void this.#connect(), delay);
  }
}
