// The SSE transport (entry `@durable-pubsub/client-sdk/sse`): a WebSocketLike over GET /v1/sse, POST /v1/publish and POST /v1/ack, so the client runs on it unchanged.
import type { WebSocketLike } from './client-types';
import type { ClientFrame, HelloFrame, PubFrame } from './protocol/types';
import { type SseEvent, sseParser } from './sse-parser';

// WebSocket's readyState numbers: the transport reads them.
const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/** A refusal before the stream starts, as the close code a WebSocket would have had (anything else: 1006, reconnect). */
const CLOSE_OF_STATUS: Record<number, number> = { 400: 4400, 401: 4401, 403: 4403, 429: 4429 };

/** The events of the stream that carry a server frame as their data, as the WebSocket would have sent it. */
const FRAMES = new Set(['welcome', 'msg', 'gap', 'live']);

/**
 * The HTTP base of a server url: a `ws://` or `wss://` url's origin over `http://` or `https://` (the routes live at
 * `/v1/*`, whatever the WebSocket's path), an `http(s)://` url as it is (a prefix a proxy mounts the server under).
 */
export function httpBase(url: string): string {
  return /^ws/i.test(url) ? url.replace(/^ws/i, 'http').replace(/^(\w+:\/\/[^/?#]+).*$/, '$1') : url.replace(/\/+$/, '');
}

/** JSON.parse, or an empty object for what is not JSON (the transport's guard judges frames; this only peeks). */
function peek(text: string): Record<string, unknown> {
  try {
    return Object(JSON.parse(text));
  } catch {
    return {};
  }
}

/**
 * A WebSocket, as the client sees one, made of HTTP requests: `createClient({ …, sse: SseSocket })`. It opens at once
 * (a tick later); the client's `hello` starts the stream (`GET /v1/sse`, the position as `lastEventId`, the token as
 * `Authorization: Bearer`), whose `welcome`, `msg`, `gap` and `live` events come as those frames and whose pings as
 * `pong`. A `pub` is a `POST /v1/publish` answered by a `puback` or `error` frame (one at a time, in order); an `ack` a
 * `POST /v1/ack`. A `sub`, `unsub` or `auth` changes what the stream was opened with: it ends (1001, once for a burst
 * of them) and the client reconnects at once with a fresh hello, resuming from its position. The server's `close`
 * event, a refusal (400, 401, 403, 429 as 4400, 4401, 4403, 4429) or the stream's end close it as a WebSocket would.
 */
export class SseSocket implements WebSocketLike {
  readyState: number = CONNECTING;
  onopen: WebSocketLike['onopen'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;
  readonly #base: string;
  readonly #abort = new AbortController();
  #hello: HelloFrame | undefined;
  /** the welcome's: acks name their position in it */
  #epoch = '';
  /** publishes go one at a time, in the order they were made (as on one WebSocket) */
  #pubs: Promise<void> = Promise.resolve();
  #reconnect: ReturnType<typeof setTimeout> | undefined;

  constructor(url: string) {
    this.#base = httpBase(url);
    // Nothing to wait for: the hello, sent from onopen, holds what the request needs.
    setTimeout(() => {
      if (this.readyState !== CONNECTING) return;
      this.readyState = OPEN;
      this.onopen?.({});
    });
  }

  send(text: string): void {
    if (this.readyState !== OPEN) return;
    const f = JSON.parse(text) as ClientFrame;
    switch (f.op) {
      case 'hello':
        this.#hello = f;
        return void this.#stream(f);
      case 'pub':
        this.#pubs = this.#pubs.then(() => this.#publish(f));
        return;
      case 'ack': {
        const { recipient, subs } = this.#hello as HelloFrame;
        // keepalive: the ack of pagehide's flush still goes out as the page unloads. One lost is not lost: the next
        // stream's lastEventId stores the position too.
        this.#post('ack', { recipient, subs, id: `${this.#epoch}:${f.id}` }, true).catch(() => {});
        return;
      }
      case 'ping':
        return; // the server's keep-alive events are the pongs
      default:
        // sub, unsub, auth: the stream was opened with other patterns or another token.
        this.#reconnect ??= setTimeout(() => this.#end(1001, `${f.op}: reconnecting`));
    }
  }

  close(code = 1005, reason = ''): void {
    this.#end(code, reason, true);
  }

  /** Ends the stream and every event of it; the close is reported now, or (close(), as a WebSocket's) a tick later. */
  #end(code: number, reason: string, later?: boolean): void {
    if (this.readyState > OPEN) return;
    this.readyState = CLOSING;
    clearTimeout(this.#reconnect);
    this.#abort.abort();
    const report = () => {
      this.readyState = CLOSED;
      this.onclose?.({ code, reason });
    };
    if (later) setTimeout(report);
    else report();
  }

  #deliver(data: string): void {
    if (this.readyState === OPEN) this.onmessage?.({ data });
  }

  #headers(): Record<string, string> {
    const token = this.#hello?.token;
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  // No content-type: a text/plain body needs no CORS preflight (the server reads JSON whatever the type).
  #post(route: string, body: unknown, keepalive?: boolean): Promise<Response> {
    return fetch(`${this.#base}/v1/${route}`, { method: 'POST', headers: this.#headers(), body: JSON.stringify(body), keepalive });
  }

  async #stream(h: HelloFrame): Promise<void> {
    const q = new URLSearchParams({ recipient: h.recipient, ping: '1' });
    for (const s of h.subs) q.append('subs', s);
    if (h.from) q.set('from', h.from);
    if (h.epoch && h.lastAckedId !== undefined) q.set('lastEventId', `${h.epoch}:${h.lastAckedId}`);
    let code = 1006;
    let reason = 'the stream ended';
    try {
      const res = await fetch(`${this.#base}/v1/sse?${q}`, {
        headers: { accept: 'text/event-stream', ...this.#headers() },
        signal: this.#abort.signal,
      });
      if (res.status !== 200 || !res.body) {
        code = CLOSE_OF_STATUS[res.status] ?? 1006;
        reason = String((peek(await res.text()).error as { message?: unknown } | undefined)?.message ?? `HTTP ${res.status}`);
      } else {
        const reader = res.body.getReader();
        const text = new TextDecoder();
        const feed = sseParser((e) => this.#event(e));
        for (let r = await reader.read(); !r.done && this.readyState === OPEN; r = await reader.read())
          feed(text.decode(r.value, { stream: true }));
      }
    } catch {
      reason = 'network error';
    }
    this.#end(code, reason);
  }

  #event({ event, data }: SseEvent): void {
    if (event === 'close') {
      const c = peek(data);
      return this.#end(typeof c.code === 'number' ? c.code : 1006, String(c.reason ?? ''));
    }
    if (event === 'welcome') this.#epoch = String(peek(data).epoch);
    // The server's keep-alive, so that the client's liveness check sees the stream is there (its pings go nowhere).
    if (event === 'ping') this.#deliver('{"op":"pong"}');
    // `reset` is not passed on: the welcome's epochChanged already tells the client.
    else if (FRAMES.has(event)) this.#deliver(data);
  }

  /** A publish: its puback or error frame; when the request fails (the outcome unknown), the stream ends and the client resends it after reconnecting (same key). */
  async #publish(f: PubFrame): Promise<void> {
    // Ended meanwhile: the client resends what is unanswered on its next connection.
    if (this.readyState !== OPEN) return;
    try {
      const res = await this.#post('publish', { ch: f.ch, data: f.data, key: f.key });
      const b = peek(await res.text());
      const e = b.error as { code?: unknown; message?: unknown } | undefined;
      if (res.ok && typeof b.id === 'number') return this.#deliver(JSON.stringify({ op: 'puback', ref: f.ref, id: b.id, dup: b.dup }));
      if (e) return this.#deliver(JSON.stringify({ op: 'error', code: e.code, message: e.message, ref: f.ref }));
    } catch {}
    this.#end(1006, 'a publish failed');
  }
}
