// The client's façade (createClient, Client): holds its one state, publishes, and routes each server frame to the transport, delivery and tab relay.
import type {
  ClientErrorCode,
  ClientEvents,
  ClientOptions,
  ClientState,
  Handler,
  Subscription,
  TabRelay,
  TransportName,
} from './client-types';
import { Delivery } from './delivery';
import { Emitter } from './emitter';
import type { Json, PubFrame, ServerFrame, SubFrame, UnsubFrame } from './protocol/types';
import { randomKey } from './random-key';
import { localStorageStorage } from './storage';
import { type Conn, Transport } from './transport';

interface PendingPub {
  readonly frame: PubFrame;
  resolve(id: number): void;
  reject(err: ClientError): void;
}

export class ClientError extends Error {
  constructor(
    readonly code: ClientErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}

export class Client extends Emitter<ClientEvents> {
  #state: ClientState = 'connecting';
  readonly #maxQueue: number;
  readonly #t: Transport;
  readonly #d: Delivery;
  readonly #relay: TabRelay | null;
  readonly #pubs = new Map<string, PendingPub>();
  #ref = 0;
  readonly #onPageHide = () => this.flush();

  constructor(opts: ClientOptions) {
    super();
    const o = {
      from: 'head' as const,
      ackMode: 'auto' as const,
      pingInterval: 20_000,
      pongTimeout: 10_000,
      backoffMin: 250,
      backoffMax: 15_000,
      ackInterval: 250,
      ackBatch: 1000,
      maxQueue: 1000,
      wsRetry: 30_000,
      ...opts,
      transports: opts.transports ?? (['websocket', 'sse'] as TransportName[]),
    };
    this.#maxQueue = o.maxQueue;
    const urls = [opts.url].flat();
    // The position is kept under the first url: the nodes of one deployment share one log.
    const key = `dps:${urls[0]}|${opts.recipient}`;
    // What the transport may reach of the client; a tab relay gets the same, and the delivery and the transport.
    const host = {
      key,
      state: () => this.#state,
      setState: (s: ClientState, reason?: string) => this.#setState(s, reason),
      emit: <K extends keyof ClientEvents>(event: K, e: ClientEvents[K]) => this.emit(event, e),
      resume: () => {
        const p = this.#d.floor();
        return { subs: [...this.#patterns()], epoch: p?.epoch, lastAckedId: p?.lastAckedId };
      },
      frame: (f: ServerFrame | null, conn: Conn) => this.#frame(f, conn),
      down: () => this.#d.save(),
      failPubs: (code: ClientErrorCode, message: string) => this.#failPubs(code, message),
      close: () => this.close(),
      publish: (ch: string, data: Json, key: string) => this.publish(ch, data, { key }),
      pubs: this.#pubs,
      settle: (ref: string, result: number | { code: ClientErrorCode; message: string }) => this.#settle(ref, result),
    };
    const t = (this.#t = new Transport(o, urls, host));
    const d = (this.#d = new Delivery(o, opts.storage ?? localStorageStorage(), key, t, host.emit));
    // A follower tab opens no socket: the relay starts the transport if this tab becomes the leader.
    this.#relay = d.relay = opts.shareAcrossTabs?.({ ...host, delivery: d, transport: t }) ?? null;
    globalThis.addEventListener?.('pagehide', this.#onPageHide);
    // Subscriptions made in the same tick go into the first hello.
    if (!this.#relay) queueMicrotask(() => this.#state === 'closed' || t.start());
  }

  get state(): ClientState {
    return this.#state;
  }

  /** How the current connection reaches the server (null between connections, and in a tab that shares another's). */
  get transport(): TransportName | null {
    const c = this.#t.conn;
    return c && (c.sse ? 'sse' : 'websocket');
  }

  /** The position this client has processed up to: what it resumes from. */
  get lastAckedId(): number {
    return this.#d.position?.lastAckedId ?? 0;
  }

  /** How many already-processed messages were dropped (the server may resend after a reconnect). */
  get duplicatesDropped(): number {
    return this.#d.duplicatesDropped;
  }

  subscribe(pattern: string, handler: Handler): Subscription {
    if (this.#d.add(pattern, handler)) this.#send({ op: 'sub', pattern });
    return {
      pattern,
      unsubscribe: () => {
        if (this.#d.remove(pattern, handler)) this.#send({ op: 'unsub', pattern });
      },
    };
  }

  /** Publishes; resolves with the stored id. Queued while disconnected; a resend never publishes twice. */
  publish(ch: string, data: Json, opts: { key?: string } = {}): Promise<number> {
    if (this.#state === 'closed') return Promise.reject(new ClientError('closed', 'the client is closed'));
    if (this.#pubs.size >= this.#maxQueue)
      return Promise.reject(new ClientError('queue_full', `more than ${this.#maxQueue} publishes pending`));
    const ref = `p${++this.#ref}`;
    const frame: PubFrame = { op: 'pub', ch, data, ref, key: opts.key ?? randomKey() };
    return new Promise((resolve, reject) => {
      this.#pubs.set(ref, { frame, resolve, reject });
      this.#send(frame);
    });
  }

  /** Saves the position and acks it (also on pagehide and close). */
  flush(): void {
    this.#d.flush();
  }

  close(): void {
    this.flush();
    this.#t.stop();
    globalThis.removeEventListener?.('pagehide', this.#onPageHide);
    this.#relay?.close();
    this.#failPubs('closed', 'the client is closed');
    this.#setState('closed');
  }

  /** The one place the state changes: the leader tab tells the others, and listeners get `{oldState, newState}`. */
  #setState(newState: ClientState, reason?: string): void {
    const oldState = this.#state;
    if (newState === oldState) return;
    this.#state = newState;
    this.#relay?.state(newState);
    this.emit('state', reason === undefined ? { oldState, newState } : { oldState, newState, reason });
  }

  /** Every pattern the socket serves: this tab's and, with a tab relay, the other tabs'. */
  #patterns(): Set<string> {
    const all = new Set(this.#d.subs.keys());
    this.#relay?.patterns(all);
    return all;
  }

  /** A request (sub, unsub, pub): through the tab relay if there is one, else on the socket once it is welcomed. */
  #send(frame: SubFrame | UnsubFrame | PubFrame): void {
    if (this.#relay) this.#relay.send(frame);
    else if (this.#t.welcomed) this.#t.send(frame);
  }

  #frame(f: ServerFrame | null, conn: Conn): void {
    const d = this.#d;
    if (!f) return d.failed(null, conn);
    switch (f.op) {
      case 'welcome': {
        d.welcome(f, conn);
        // A tab announced a position below this resume point after the hello went out: resume from it instead.
        if (this.#relay?.behind(f.epoch, f.resumeFrom)) return this.#t.restart('resync tabs');
        conn.phase = 'catching-up';
        this.#setState('catching-up');
        const all = this.#patterns();
        // Patterns subscribed or unsubscribed after the hello went out (requests wait for a welcome): sent now, or the
        // server would never hear of them on this connection.
        for (const pattern of all) if (!conn.subs.includes(pattern)) this.#t.send({ op: 'sub', pattern });
        for (const pattern of conn.subs) if (!all.has(pattern)) this.#t.send({ op: 'unsub', pattern });
        for (const p of this.#pubs.values()) this.#t.send(p.frame);
        return;
      }
      case 'msg':
        return d.msg(f, conn);
      case 'msgs':
        for (const m of f.msgs) d.msg(m, conn);
        return;
      case 'live':
        conn.phase = 'live';
        // Reported once the handlers have seen everything sent before it; the position the catch-up
        // reached is saved and acked then, not up to ackInterval later (a dashboard's lag reads 0 at once).
        return d.inOrder(() => {
          if (conn !== this.#t.conn || conn.broken) return;
          d.flush();
          this.#setState('live');
        });
      case 'gap': {
        const gap = { ch: f.ch, after: f.after, upTo: f.upTo };
        this.#relay?.gap(gap);
        this.emit('gap', gap);
        return;
      }
      case 'puback':
        this.#settle(f.ref, f.id);
        return;
      case 'error':
        // A reply to a publish (by its ref), or an error about the connection.
        if (!this.#settle(f.ref, f)) this.emit('error', { code: f.code, message: f.message });
        return;
      default:
        return; // pong, subbed, unsubbed, authed: the transport took what they carry
    }
  }

  /** Answers a waiting publish with its id or an error; false when none waits under `ref`. */
  #settle(ref: unknown, result: number | { code: ClientErrorCode; message: string }): boolean {
    const p = this.#pubs.get(ref as string);
    if (!p) return false;
    this.#pubs.delete(ref as string);
    if (typeof result === 'number') p.resolve(result);
    else p.reject(new ClientError(result.code, result.message));
    return true;
  }

  #failPubs(code: ClientErrorCode, message: string): void {
    const err = new ClientError(code, message);
    for (const p of this.#pubs.values()) p.reject(err);
    this.#pubs.clear();
  }
}

export function createClient(opts: ClientOptions): Client {
  return new Client(opts);
}
