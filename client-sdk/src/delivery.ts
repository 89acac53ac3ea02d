// Delivery: each message to the handlers once, in id order; the position they reached, kept per (url, recipient, pattern set), saved and acked in batches.
import type { ClientEvents, ClientOptions, Handler, Message, MessageContext, TabRelay, WebSocketLike } from './client-types';
import { compileGlob, type Matcher } from './protocol/glob';
import { patternSetKey } from './protocol/subscription';
import type { MsgFrame, WelcomeFrame } from './protocol/types';
import type { Position, PositionStorage } from './storage';
import type { Conn, Transport } from './transport';

/** Where messages come from: a connection, or (in a follower tab) the leader's relay. */
interface Source {
  /** a handler failed on one of its messages (or it sent a frame that cannot be read): nothing more of it is processed */
  broken?: boolean;
  readonly ws?: WebSocketLike;
}

type Options = Required<Pick<ClientOptions, 'ackMode' | 'ackInterval' | 'ackBatch'>> & Pick<ClientOptions, 'position'>;
type Emit = <K extends keyof ClientEvents>(event: K, e: ClientEvents[K]) => void;

export class Delivery {
  /** this tab's patterns and their handlers */
  readonly subs = new Map<string, { matcher: Matcher; handlers: Set<Handler> }>();
  /** what this tab's handlers processed: saved under its own pattern set, sent in hello, acked */
  position: Position | null = null;
  /** highest id this tab's handlers saw (shared tabs: the floor a new leader's replay is deduplicated against) */
  delivered = 0;
  /** how many already-processed messages were dropped (the server may resend after a reconnect) */
  duplicatesDropped = 0;
  /** the tab relay, when tabs share the socket */
  relay: TabRelay | null = null;
  readonly #o: Options;
  readonly #storage: PositionStorage;
  /** (url, recipient): positions are kept under it, per pattern set */
  readonly #key: string;
  readonly #t: Transport;
  readonly #emit: Emit;
  /** an async handler's work in progress: what arrives meanwhile waits behind it, in order */
  #chain: Promise<void> | null = null;
  #unsaved = 0;
  /** the highest id acked on the socket */
  #acked = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(o: Options, storage: PositionStorage, key: string, transport: Transport, emit: Emit) {
    this.#o = o;
    this.#storage = storage;
    this.#key = key;
    this.#t = transport;
    this.#emit = emit;
  }

  /** Adds a handler; true when its pattern is new to this tab. */
  add(pattern: string, handler: Handler): boolean {
    const sub = this.subs.get(pattern);
    if (sub) {
      sub.handlers.add(handler);
      return false;
    }
    this.subs.set(pattern, { matcher: compileGlob(pattern), handlers: new Set([handler]) });
    return true;
  }

  /** Removes a handler; true when its pattern has no handler left (and is gone from this tab). */
  remove(pattern: string, handler: Handler): boolean {
    const sub = this.subs.get(pattern);
    if (!sub?.handlers.delete(handler) || sub.handlers.size) return false;
    return this.subs.delete(pattern);
  }

  /** Where this tab's position is kept: per (url, recipient, pattern set), as the server keeps it. */
  #storageKey(): string {
    return `${this.#key}|${patternSetKey(this.subs.keys())}`;
  }

  /** This tab's position: the one it was given, else from storage the first time (the one saved for its own pattern set). */
  own(): Position | null {
    const p = this.#o.position;
    this.position ??= p ? { epoch: p.epoch, lastAckedId: p.id } : this.#storage.get(this.#storageKey());
    return this.position;
  }

  /**
   * Where the socket resumes and how far it acks: the lowest position of the tabs it serves (this one's and, with
   * a tab relay, each other tab's, in one epoch), so that no tab's unprocessed message is acked or skipped.
   */
  floor(): Position | null {
    const own = this.own();
    return this.relay ? this.relay.floor(own) : own;
  }

  save(): void {
    if (this.position) this.#storage.set(this.#storageKey(), this.position);
  }

  /** The server's welcome: its epoch (a new one means the old log is gone: `reset`) and where the stream resumes. */
  welcome(f: WelcomeFrame, conn: Conn): void {
    const old = this.position;
    if (f.epochChanged && old) {
      const reset = { oldEpoch: old.epoch, newEpoch: f.epoch, lastAckedId: old.lastAckedId };
      this.delivered = 0;
      this.relay?.reset(reset, f.resumeFrom);
      this.#emit('reset', reset);
    }
    if (!old || old.epoch !== f.epoch) {
      this.position = { epoch: f.epoch, lastAckedId: f.resumeFrom };
      this.save();
    }
    conn.from = conn.at = f.resumeFrom;
    this.#acked = Math.min(this.#acked, this.floor()?.lastAckedId ?? 0);
  }

  /** A message of the socket's stream (alone, or one of a `msgs` frame): to the other tabs, and to this tab's handlers. */
  msg(f: MsgFrame, conn: Conn): void {
    const msg: Message = { id: f.id, ch: f.ch, data: f.data, ts: f.ts, replayed: conn.phase === 'catching-up' };
    conn.at = f.id;
    this.relay?.msg(msg, conn.from);
    this.deliver(msg, conn);
  }

  deliver(msg: Message, from: Source): void {
    this.inOrder(() => this.#process(msg, from));
  }

  /**
   * Runs `task` now, or after the async handler work in front of it. Synchronous handlers cost no promise
   * and no turn per message (a catch-up of 500 messages to each of 2,000 clients spent ~10 % in the chain).
   */
  inOrder(task: () => Promise<void> | void): void {
    const p = this.#chain ? this.#chain.then(task) : task();
    if (!p) return;
    const c: Promise<void> = (this.#chain = p.then(() => {
      if (this.#chain === c) this.#chain = null;
    }));
  }

  /** Runs the handlers from hs[i] on `msg`, waiting only for one that returns a promise; then it counts as processed. */
  #process(msg: Message, from: Source, hs?: Handler[], i = 0): Promise<void> | void {
    if (!hs) {
      if (from.broken) return;
      if (msg.id <= Math.max(this.position?.lastAckedId ?? 0, this.delivered)) {
        this.duplicatesDropped++;
        return;
      }
      hs = [];
      for (const sub of this.subs.values()) if (sub.matcher(msg.ch)) for (const h of sub.handlers) hs.push(h);
    }
    const ctx: MessageContext = { ack: () => this.#advance(msg.id) };
    try {
      for (; i < hs.length; i++) {
        const r = (hs[i] as Handler)(msg, ctx);
        if (r)
          return Promise.resolve(r).then(
            () => this.#process(msg, from, hs, i + 1),
            (e) => this.failed(msg, from, e),
          );
      }
    } catch (cause) {
      return this.failed(msg, from, cause);
    }
    if (this.relay) this.delivered = msg.id;
    if (this.#o.ackMode === 'auto') this.#advance(msg.id);
  }

  /** A handler failed on `msg`, or (null) the connection sent a frame that cannot be read. */
  failed(msg: Message | null, from: Source, cause?: unknown): void {
    // The position stays before this message: reconnect, and the server sends it again.
    from.broken = true;
    if (msg) this.#emit('error', { code: 'handler', message: `handler failed on message ${msg.id}`, cause });
    else this.#emit('error', { code: 'bad_frame', message: 'the server sent a frame that is not a server frame; resuming', cause });
    from.ws?.close(4000, msg ? 'handler failed' : 'bad frame');
  }

  /** Moves the processed position forward; saved and acked in batches. */
  #advance(id: number): void {
    if (!this.position || id <= this.position.lastAckedId) return;
    this.position.lastAckedId = id;
    if (++this.#unsaved >= this.#o.ackBatch) this.flush();
    else this.ackSoon();
  }

  ackSoon(): void {
    this.#timer ??= setTimeout(() => this.flush(), this.#o.ackInterval);
  }

  /**
   * Saves the position and acks it. With a tab relay, a follower tells the leader instead, and the leader acks the
   * lowest position of all the tabs (floor), so the server never counts as processed a message that some tab's
   * handlers have not had.
   */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#unsaved = 0;
    const p = this.position;
    if (!p) return;
    this.save();
    if (this.relay?.done(p)) return;
    const at = this.floor();
    if (this.#t.welcomed && at && at.epoch === p.epoch && at.lastAckedId > this.#acked) {
      this.#acked = at.lastAckedId;
      this.#t.send({ op: 'ack', id: this.#acked });
    }
  }
}
