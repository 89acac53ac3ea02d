// The durable-pubsub client: connects, resumes from its stored position, delivers in order, acks, reconnects.
import { backoff } from './backoff';
import type {
  ClientEvents,
  ClientOptions,
  ClientState,
  Handler,
  Message,
  MessageContext,
  Subscription,
  WebSocketConstructor,
  WebSocketLike,
} from './client-types';
import { Emitter } from './emitter';
import { CloseCode, compileGlob, type Matcher, patternSetKey } from './protocol';
import type { ClientFrame, Json, MsgFrame, ServerFrame } from './protocol/types';
import { localStorageStorage, type Position, type PositionStorage } from './storage';
import { joinTabs, type TabLink, type TabMessage, type TabPosition } from './tabs';

interface PendingPub {
  frame: Extract<ClientFrame, { op: 'pub' }>;
  resolve(id: number): void;
  reject(err: ClientError): void;
}

type Timer = 'reconnect' | 'ping' | 'ack' | 'token';

export class ClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}

const OPEN = 1;

function randomKey(): string {
  const c = globalThis.crypto;
  return c?.randomUUID ? c.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/** Seconds-since-epoch `exp` of a JWT, or null. */
function tokenExp(token: string): number | null {
  try {
    const payload = token.split('.')[1] ?? '';
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const exp = JSON.parse(json).exp;
    return typeof exp === 'number' ? exp : null;
  } catch {
    return null;
  }
}

export class Client extends Emitter<ClientEvents> {
  state: ClientState = 'connecting';
  /** how many already-processed messages were dropped (the server may resend after a reconnect) */
  duplicatesDropped = 0;
  readonly #o: Required<Omit<ClientOptions, 'token' | 'getToken' | 'storage' | 'WebSocket' | 'shareAcrossTabs'>> & ClientOptions;
  readonly #storage: PositionStorage;
  /** (url, recipient): the tabs' lock and channel; positions are kept per (url, recipient, pattern set) */
  readonly #key: string;
  readonly #urls: string[];
  /** what this tab's handlers processed: saved under its own pattern set, sent in hello, acked */
  #position: Position | null = null;
  readonly #subs = new Map<string, { matcher: Matcher; handlers: Set<Handler> }>();
  readonly #pubs = new Map<string, PendingPub>();
  private ws: WebSocketLike | null = null;
  #welcomed = false;
  #catchingUp = false;
  #attempt = 0;
  /** connection generation: messages of a connection whose handler failed are not processed */
  #gen = 0;
  #brokenGen = -1;
  /** met a frame it could not parse: later hellos ask the server to check replayed messages, one a frame */
  #checked = false;
  /** an async handler's work in progress: frames that arrive meanwhile wait behind it, in order */
  #chain: Promise<void> | null = null;
  /** when the last frame arrived (liveness: a ping goes out after pingInterval of silence) */
  #rxAt = 0;
  #ackSent = 0;
  /** the socket's stream: where it resumed, and the highest id it delivered (a tab announcing less missed messages) */
  #from = 0;
  #streamAt = 0;
  /** a follower that announced its position ignores relayed messages of a stream that started after it */
  #waitFrom: number | undefined;
  #unsaved = 0;
  #ref = 0;
  #timers: Partial<Record<Timer, ReturnType<typeof setTimeout>>> = {};
  #token: string | undefined;
  #closedByUser = false;
  /** with shareAcrossTabs: this tab's role, and the other tabs' patterns and positions */
  private role: 'solo' | 'leader' | 'follower' = 'solo';
  readonly #tabId = randomKey();
  #tabs: TabLink | null = null;
  /** the other tabs: their patterns, their position (processed up to), and whether the last liveness check missed them */
  readonly #peers = new Map<string, { patterns: string[]; pos?: TabPosition; missed?: boolean }>();
  #announced = false;
  /** highest id this tab's handlers saw (shared mode: the floor a new leader's replay is deduplicated against) */
  #delivered = 0;
  readonly #onOnline = () => {
    if (this.state === 'reconnecting') this.#retryNow();
  };
  readonly #onPageHide = () => this.flush();

  constructor(opts: ClientOptions) {
    super();
    this.#o = {
      from: 'head',
      ackMode: 'auto',
      pingInterval: 20_000,
      pongTimeout: 10_000,
      backoffMin: 250,
      backoffMax: 15_000,
      ackInterval: 250,
      ackBatch: 1000,
      maxQueue: 1000,
      ...opts,
    };
    this.#storage = opts.storage ?? localStorageStorage();
    this.#urls = [opts.url].flat();
    this.#key = `dps:${this.#urls[0]}|${opts.recipient}`;
    this.#token = opts.token;
    // A browser's global scope (Node has no global addEventListener).
    globalThis.addEventListener?.('online', this.#onOnline);
    globalThis.addEventListener?.('pagehide', this.#onPageHide);
    if (opts.shareAcrossTabs) {
      this.#tabs = joinTabs(
        this.#key,
        this.#tabId,
        () => this.#becomeLeader(),
        (m) => this.#onTab(m),
      );
      if (this.#tabs) {
        this.role = 'follower';
        this.#tabs.post({ t: 'join', tab: this.#tabId });
        // Announced once this tick's subscriptions are made: its position is its pattern set's.
        queueMicrotask(() => this.#postSubs(true));
        return;
      }
    }
    // Subscriptions made in the same tick go into the first hello.
    queueMicrotask(() => void this.#connect());
  }

  #becomeLeader(): void {
    this.role = 'leader';
    this.#tabs?.post({ t: 'leader', tab: this.#tabId });
    void this.#connect();
  }

  /** Every pattern this socket serves: this tab's, and in shared mode the other tabs'. */
  #patterns(): Set<string> {
    const all = new Set(this.#subs.keys());
    for (const p of this.#peers.values()) for (const pattern of p.patterns) all.add(pattern);
    return all;
  }

  /** Where this tab's position is kept: per (url, recipient, pattern set), as the server keeps it. */
  #storageKey(): string {
    return `${this.#key}|${patternSetKey(this.#subs.keys())}`;
  }

  /** This tab's position, from storage the first time: the one saved for its own pattern set. */
  #own(): Position | null {
    this.#position ??= this.#storage.get(this.#storageKey());
    return this.#position;
  }

  /**
   * Where the socket resumes and how far it acks: the lowest position of the tabs it serves (this one's and, in
   * shared mode, each other tab's, in one epoch), so that no tab's unprocessed message is acked or skipped.
   */
  #floor(): Position | null {
    let f = this.#own();
    for (const { pos } of this.#peers.values())
      if (pos && (!f || (pos.epoch === f.epoch && pos.at < f.lastAckedId))) f = { epoch: pos.epoch, lastAckedId: pos.at };
    return f;
  }

  #onTab(m: TabMessage): void {
    const leader = this.role === 'leader';
    switch (m.t) {
      case 'join':
        this.#postSubs();
        if (leader) this.#tabs?.post({ t: 'state', state: this.state, epoch: this.#position?.epoch });
        return;
      case 'subs': {
        const before = this.#patterns();
        const peer = this.#peers.get(m.tab) ?? { patterns: [] };
        peer.patterns = m.patterns;
        this.#peers.set(m.tab, peer);
        if (m.pos !== undefined) {
          // Announced: its saved position, or (none, or of a lost log) from where the socket is now.
          const p = this.#position;
          peer.pos =
            m.pos && (!p || m.pos.epoch === p.epoch) ? m.pos : p && this.#welcomed ? { epoch: p.epoch, at: this.#streamAt } : undefined;
        }
        if (!leader || !this.#welcomed) return;
        // A tab that comes back behind the socket missed messages: resume the socket from the lowest position.
        if (peer.pos && peer.pos.at < this.#streamAt) return this.#resync();
        for (const p of m.patterns) if (!before.has(p)) this.#send({ op: 'sub', pattern: p });
        return;
      }
      case 'done': {
        const peer = this.#peers.get(m.tab);
        if (peer) peer.pos = { epoch: m.epoch, at: m.at };
        if (leader) this.#timers.ack ??= setTimeout(() => this.flush(), this.#o.ackInterval);
        return;
      }
      case 'bye':
        this.#peers.delete(m.tab);
        return;
      case 'leader':
        // Publishes the old leader had not answered go to the new one (same idempotency keys).
        for (const [ref, p] of this.#pubs) this.#postPub(ref, p);
        this.#postSubs(true);
        return;
      case 'msg':
        if (leader) return;
        // The leader resumes the socket from this tab's position (it is behind): until then, nothing is skipped over.
        if (this.#waitFrom !== undefined) {
          if (m.from > this.#waitFrom) return;
          this.#waitFrom = undefined;
        }
        this.#inOrder(() => this.#process(m.msg, -2));
        return;
      case 'state':
        if (leader) return;
        // A follower without a position of its own starts where the socket is (it processes from now on).
        if (m.epoch && (!this.#own() || this.#position?.epoch !== m.epoch))
          this.#position = { epoch: m.epoch, lastAckedId: this.#delivered };
        this.#setState(m.state);
        return;
      case 'gap':
        if (!leader) this.emit('gap', { ch: m.ch, after: m.after, upTo: m.upTo });
        return;
      case 'reset':
        if (!leader) {
          this.#delivered = 0;
          this.#position = { epoch: m.newEpoch, lastAckedId: m.resumeFrom };
          this.emit('reset', { oldEpoch: m.oldEpoch, newEpoch: m.newEpoch, lastAckedId: m.lastAckedId });
        }
        return;
      case 'pub':
        if (leader)
          this.publish(m.ch, m.data, { key: m.key }).then(
            (id) => this.#tabs?.post({ t: 'puback', tab: m.tab, ref: m.ref, id }),
            (e: ClientError) => this.#tabs?.post({ t: 'puberr', tab: m.tab, ref: m.ref, code: e.code, message: e.message }),
          );
        return;
      case 'puback':
      case 'puberr': {
        const p = m.tab === this.#tabId ? this.#pubs.get(m.ref) : undefined;
        if (!p) return;
        this.#pubs.delete(m.ref);
        if (m.t === 'puback') p.resolve(m.id);
        else p.reject(new ClientError(m.code, m.message));
        return;
      }
    }
  }

  /** Tells the other tabs this tab's patterns; with `announce`, also its position (joining, or to a new leader). */
  #postSubs(announce = false): void {
    if (!this.#announced && !announce) return;
    this.#announced = true;
    const p = this.#own();
    const pos: TabPosition | null | undefined = announce
      ? p && { epoch: p.epoch, at: Math.max(p.lastAckedId, this.#delivered) }
      : undefined;
    if (announce) this.#waitFrom = pos?.at;
    this.#tabs?.post({ t: 'subs', tab: this.#tabId, patterns: [...this.#subs.keys()], pos });
  }

  /** Resumes the socket from the lowest position of the tabs (one of them came back behind it). */
  #resync(): void {
    const ws = this.ws;
    this.#detach();
    ws?.close(1000, 'resync tabs');
    this.#retryNow();
  }

  #postPub(ref: string, p: PendingPub): void {
    const { ch, data, key } = p.frame;
    this.#tabs?.post({ t: 'pub', tab: this.#tabId, ref, ch, data, key: key as string });
  }

  /** The position this client has processed up to: what it resumes from. */
  get lastAckedId(): number {
    return this.#position?.lastAckedId ?? 0;
  }

  subscribe(pattern: string, handler: Handler): Subscription {
    let sub = this.#subs.get(pattern);
    if (!sub) {
      sub = { matcher: compileGlob(pattern), handlers: new Set() };
      const known = this.#patterns().has(pattern);
      this.#subs.set(pattern, sub);
      if (this.role === 'follower') this.#postSubs();
      else if (this.#welcomed && !known) this.#send({ op: 'sub', pattern });
    }
    sub.handlers.add(handler);
    return {
      pattern,
      unsubscribe: () => {
        const s = this.#subs.get(pattern);
        if (!s?.handlers.delete(handler) || s.handlers.size) return;
        this.#subs.delete(pattern);
        if (this.role === 'follower') this.#postSubs();
        else if (this.#welcomed && !this.#patterns().has(pattern)) this.#send({ op: 'unsub', pattern });
      },
    };
  }

  /** Publishes; resolves with the stored id. Queued while disconnected; a resend never publishes twice. */
  publish(ch: string, data: Json, opts: { key?: string } = {}): Promise<number> {
    if (this.state === 'closed') return Promise.reject(new ClientError('closed', 'the client is closed'));
    if (this.#pubs.size >= this.#o.maxQueue)
      return Promise.reject(new ClientError('queue_full', `more than ${this.#o.maxQueue} publishes pending`));
    const ref = `p${++this.#ref}`;
    const frame = { op: 'pub' as const, ch, data, ref, key: opts.key ?? randomKey() };
    return new Promise((resolve, reject) => {
      const pending = { frame, resolve, reject };
      this.#pubs.set(ref, pending);
      if (this.role === 'follower') this.#postPub(ref, pending);
      else if (this.#welcomed) this.#send(frame);
    });
  }

  close(): void {
    if (this.state === 'closed') return;
    this.#closedByUser = true;
    this.flush();
    this.#stopTimers();
    globalThis.removeEventListener?.('online', this.#onOnline);
    globalThis.removeEventListener?.('pagehide', this.#onPageHide);
    const ws = this.ws;
    this.#detach();
    ws?.close(1000, 'client closed');
    this.#tabs?.post({ t: 'bye', tab: this.#tabId });
    this.#tabs?.close();
    this.#failPubs(new ClientError('closed', 'the client is closed'));
    this.#setState('closed');
  }

  #setState(newState: ClientState, reason?: string): void {
    if (newState === this.state) return;
    const oldState = this.state;
    this.state = newState;
    if (this.role === 'leader') this.#tabs?.post({ t: 'state', state: newState, epoch: this.#position?.epoch });
    this.emit('state', reason === undefined ? { oldState, newState } : { oldState, newState, reason });
  }

  #send(frame: ClientFrame): void {
    if (this.ws?.readyState === OPEN) this.ws.send(JSON.stringify(frame));
  }

  async #connect(): Promise<void> {
    if (this.#closedByUser) return;
    this.#setState(this.#attempt === 0 && this.#gen === 0 ? 'connecting' : 'reconnecting');
    if (this.#o.getToken) {
      try {
        this.#token = await this.#o.getToken();
      } catch (cause) {
        this.emit('error', { code: 'token', message: 'getToken failed', cause });
        return this.#scheduleReconnect();
      }
      if (this.#closedByUser) return;
    }
    const WS = this.#o.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) {
      this.emit('error', { code: 'no_websocket', message: 'no WebSocket: pass options.WebSocket (e.g. from "ws")' });
      return this.close();
    }
    let ws: WebSocketLike;
    const url = this.#urls[this.#gen % this.#urls.length] as string;
    try {
      ws = new WS(url);
    } catch (cause) {
      this.emit('error', { code: 'bad_url', message: `cannot open ${url}`, cause });
      return this.close();
    }
    const gen = ++this.#gen;
    this.ws = ws;
    ws.onopen = () => {
      // Absent fields (undefined) are left out by JSON.stringify.
      const { recipient, from } = this.#o;
      const p = this.#floor();
      const hello: ClientFrame = {
        op: 'hello',
        v: 1,
        recipient,
        subs: [...this.#patterns()],
        from,
        token: this.#token,
        epoch: p?.epoch,
        lastAckedId: p?.lastAckedId,
        // Catch-up may come as msgs frames (one event for many messages), unless a frame could not be parsed:
        // then one message a frame, each checked by the server (a bad one comes as a gap), so no good one is lost.
        batch: this.#checked ? undefined : true,
        checked: this.#checked || undefined,
      };
      ws.send(JSON.stringify(hello));
      this.#armPing();
    };
    ws.onmessage = (ev) => {
      let frame: ServerFrame;
      try {
        frame = JSON.parse(String(ev.data)) as ServerFrame;
      } catch (cause) {
        // Nothing after it is processed (it may hold messages), nothing is acked past what was, and the client
        // resumes from there with the server checking each replayed message: never a skip on the SDK's own.
        this.#checked = true;
        this.#failed(null, gen, cause);
        return;
      }
      this.#onFrame(frame, gen);
    };
    ws.onclose = (ev) => this.#onClose(ev.code, ev.reason);
    ws.onerror = () => {}; // onclose follows
  }

  #onFrame(f: ServerFrame, gen: number): void {
    this.#rxAt = Date.now();
    switch (f.op) {
      case 'welcome': {
        const old = this.#position;
        if (f.epochChanged && old) {
          const reset = { oldEpoch: old.epoch, newEpoch: f.epoch, lastAckedId: old.lastAckedId };
          this.#delivered = 0;
          this.#tabs?.post({ t: 'reset', ...reset, resumeFrom: f.resumeFrom });
          this.emit('reset', reset);
        }
        if (!old || old.epoch !== f.epoch) {
          this.#position = { epoch: f.epoch, lastAckedId: f.resumeFrom };
          this.#save();
        }
        this.#from = this.#streamAt = f.resumeFrom;
        this.#ackSent = Math.min(this.#ackSent, this.#floor()?.lastAckedId ?? 0);
        // A tab announced a position below this resume point after the hello went out: resume from it instead.
        for (const { pos } of this.#peers.values()) if (pos?.epoch === f.epoch && pos.at < f.resumeFrom) return this.#resync();
        this.#welcomed = true;
        this.#catchingUp = true;
        this.#setState('catching-up');
        for (const p of this.#pubs.values()) this.#send(p.frame);
        this.#scheduleTokenRefresh();
        return;
      }
      case 'msg':
        return this.#onMsg(f, gen);
      case 'msgs':
        for (const m of f.msgs) this.#onMsg(m, gen);
        return;
      case 'live':
        this.#catchingUp = false;
        this.#attempt = 0;
        // Reported once the handlers have seen everything sent before it; the position the catch-up
        // reached is saved and acked then, not up to ackInterval later (a dashboard's lag reads 0 at once).
        this.#inOrder(() => {
          if (gen !== this.#gen || this.#brokenGen === gen) return;
          this.flush();
          this.#setState('live');
        });
        return;
      case 'gap': {
        const gap = { ch: f.ch, after: f.after, upTo: f.upTo };
        this.#tabs?.post({ t: 'gap', ...gap });
        this.emit('gap', gap);
        return;
      }
      case 'puback':
      case 'error': {
        // A reply to a publish (by its ref), or an error about the connection.
        const p = this.#pubs.get(f.ref as string);
        this.#pubs.delete(f.ref as string);
        if (f.op === 'puback') p?.resolve(f.id);
        else if (p) p.reject(new ClientError(f.code, f.message));
        else this.emit('error', { code: f.code, message: f.message });
        return;
      }
      case 'authed':
        this.#scheduleTokenRefresh();
        return;
      default:
        return; // pong, subbed, unsubbed: liveness is all they carry here
    }
  }

  #onMsg(f: MsgFrame, gen: number): void {
    const msg: Message = { id: f.id, ch: f.ch, data: f.data, ts: f.ts, replayed: this.#catchingUp };
    this.#streamAt = f.id;
    this.#tabs?.post({ t: 'msg', msg, from: this.#from });
    this.#inOrder(() => this.#process(msg, gen));
  }

  /**
   * Runs `task` now, or after the async handler work in front of it. Synchronous handlers cost no promise
   * and no turn per message (a catch-up of 500 messages to each of 2,000 clients spent ~10 % in the chain).
   */
  #inOrder(task: () => Promise<void> | void): void {
    const p = this.#chain ? this.#chain.then(task) : task();
    if (!p) return;
    const c: Promise<void> = (this.#chain = p.then(() => {
      if (this.#chain === c) this.#chain = null;
    }));
  }

  /** Runs the handlers from hs[i] on `msg`, waiting only for one that returns a promise; then it counts as processed. */
  #process(msg: Message, gen: number, hs?: Handler[], i = 0): Promise<void> | void {
    if (!hs) {
      if (gen === this.#brokenGen) return;
      if (msg.id <= Math.max(this.#position?.lastAckedId ?? 0, this.#delivered)) {
        this.duplicatesDropped++;
        return;
      }
      hs = [];
      for (const sub of this.#subs.values()) if (sub.matcher(msg.ch)) for (const h of sub.handlers) hs.push(h);
    }
    const ctx: MessageContext = { ack: () => this.#advance(msg.id) };
    try {
      for (; i < hs.length; i++) {
        const r = (hs[i] as Handler)(msg, ctx);
        if (r)
          return Promise.resolve(r).then(
            () => this.#process(msg, gen, hs, i + 1),
            (e) => this.#failed(msg, gen, e),
          );
      }
    } catch (cause) {
      return this.#failed(msg, gen, cause);
    }
    if (this.#tabs) this.#delivered = msg.id;
    if (this.#o.ackMode === 'auto') this.#advance(msg.id);
  }

  /** A handler failed on `msg`, or (null) a frame could not be parsed. */
  #failed(msg: Message | null, gen: number, cause: unknown): void {
    // The position stays before this message: reconnect, and the server sends it again.
    this.#brokenGen = gen;
    if (msg) this.emit('error', { code: 'handler', message: `handler failed on message ${msg.id}`, cause });
    else this.emit('error', { code: 'bad_frame', message: 'the server sent a frame that is not JSON; resuming', cause });
    if (gen === this.#gen) this.ws?.close(4000, msg ? 'handler failed' : 'bad frame');
  }

  /** Moves the processed position forward; saved and acked in batches. */
  #advance(id: number): void {
    if (!this.#position || id <= this.#position.lastAckedId) return;
    this.#position.lastAckedId = id;
    if (++this.#unsaved >= this.#o.ackBatch) this.flush();
    else this.#timers.ack ??= setTimeout(() => this.flush(), this.#o.ackInterval);
  }

  #save(): void {
    if (this.#position) this.#storage.set(this.#storageKey(), this.#position);
  }

  /**
   * Saves the position and acks it (also on pagehide and close). A follower tells the leader instead; the leader
   * acks the lowest position of all the tabs (#floor), so the server never counts as processed a message that some
   * tab's handlers have not had. Tabs that went away without a word (crashed) stop holding it back once the
   * browser has released their lock, seen twice.
   */
  flush(): void {
    clearTimeout(this.#timers.ack);
    this.#timers.ack = undefined;
    this.#unsaved = 0;
    const p = this.#position;
    if (!p) return;
    this.#save();
    if (this.role === 'follower') return this.#tabs?.post({ t: 'done', tab: this.#tabId, epoch: p.epoch, at: p.lastAckedId });
    if (this.#peers.size)
      this.#tabs?.alive().then((alive) => {
        for (const [tab, peer] of this.#peers)
          if (alive.has(tab)) peer.missed = false;
          else if (peer.missed) this.#peers.delete(tab);
          else peer.missed = true;
      });
    const at = this.#floor();
    if (this.#welcomed && at && at.epoch === p.epoch && at.lastAckedId > this.#ackSent) {
      this.#ackSent = at.lastAckedId;
      this.#send({ op: 'ack', id: this.#ackSent });
    }
  }

  /** Pings after pingInterval without a frame; dead after pongTimeout more. One timer per connection, not one per frame. */
  #armPing(): void {
    const { pingInterval: p, pongTimeout: t } = this.#o;
    this.#rxAt = Date.now();
    clearInterval(this.#timers.ping);
    this.#timers.ping = setInterval(() => {
      const quiet = Date.now() - this.#rxAt;
      if (quiet >= p + t) this.#onDead();
      else if (quiet >= p) this.#send({ op: 'ping' });
    }, t / 2);
  }

  /** No frame for too long: the connection is dead even if the socket has not noticed. */
  #onDead(): void {
    const ws = this.ws;
    this.#detach();
    ws?.close(4000, 'no pong');
    this.#onClose(1006, 'no pong in time');
  }

  #scheduleTokenRefresh(): void {
    clearTimeout(this.#timers.token);
    const exp = this.#token ? tokenExp(this.#token) : null;
    if (!exp || !this.#o.getToken) return;
    const getToken = this.#o.getToken;
    // Refresh a little before expiry: 30 s, or a fifth of a short lifetime.
    const inMs = exp * 1000 - Date.now();
    const delay = Math.max(1000, inMs - Math.min(30_000, inMs / 5));
    this.#timers.token = setTimeout(async () => {
      try {
        this.#token = await getToken();
        this.#send({ op: 'auth', token: this.#token });
      } catch (cause) {
        this.emit('error', { code: 'token', message: 'getToken failed', cause });
      }
    }, delay);
  }

  #detach(): void {
    if (!this.ws) return;
    this.ws.onopen = this.ws.onmessage = this.ws.onclose = null;
    this.ws = null;
    this.#welcomed = false;
  }

  #onClose(code: number, reason: string): void {
    this.#detach();
    this.#stopTimers();
    this.#save();
    if (this.#closedByUser) return;
    if (code === CloseCode.unauthorized || code === CloseCode.forbidden) {
      const c = code === CloseCode.forbidden ? 'forbidden' : 'unauthorized';
      this.#failPubs(new ClientError(c, reason || 'refused'));
      this.emit('error', { code: c, message: reason });
      this.#closedByUser = true;
      this.#setState('closed', reason || String(code));
      return;
    }
    if (code === CloseCode.goingAway) this.#retryNow();
    else this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    this.#setState('reconnecting');
    const delay = backoff(this.#attempt++, this.#o.backoffMin, this.#o.backoffMax);
    this.#timers.reconnect = setTimeout(() => void this.#connect(), delay);
  }

  #retryNow(): void {
    clearTimeout(this.#timers.reconnect);
    this.#setState('reconnecting');
    this.#timers.reconnect = setTimeout(() => void this.#connect(), 0);
  }

  #stopTimers(): void {
    for (const k of Object.keys(this.#timers) as Timer[]) {
      clearTimeout(this.#timers[k]);
      this.#timers[k] = undefined;
    }
  }

  #failPubs(err: ClientError): void {
    for (const p of this.#pubs.values()) p.reject(err);
    this.#pubs.clear();
  }
}

export function createClient(opts: ClientOptions): Client {
  return new Client(opts);
}
