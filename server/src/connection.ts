// What every reader of a stream is, whatever carries it (a WebSocket, an SSE response, a long-poll): admitted by its
// token, registered live before the store decides where it resumes, then served by the one hand-over (handover.ts).
import { CloseCode, type HelloFrame } from '@durable-pubsub/client-sdk/protocol';
import { nanoid } from 'nanoid';
import type { Authenticator, Grant } from './auth';
import type { Bridge, LiveSink } from './bridge';
import type { Config } from './config';
import { Credentials } from './credentials';
import { DpsError, toDpsError } from './errors';
import type { Gate } from './gate';
import { HandOver, type HandOverDeps, type HandOverHost, type Outlet, type StreamOptions } from './handover';
import { Interest, patternProblem } from './interest';
import type { Logger } from './log';
import type { Stats } from './metrics';
import { Position } from './position';
import { canMove, countMove, type SessionState, type StateCounts } from './session-state';
import type { HelloResult, Store } from './store';

export interface ConnectionDeps extends Omit<HandOverDeps, 'store' | 'bridge'> {
  store: Store;
  bridge: Bridge;
  config: Config;
  log: Logger;
  stats: Stats;
  auth: Authenticator;
  /** open connections per state, kept by this server's connections */
  states: StateCounts;
  /** other open connections of `recipient` on this node (WebSocket, SSE and long-poll alike) */
  connectionsOf(recipient: string): number;
  /** a connection of `recipient` was admitted (+1) or closed (-1): what `connectionsOf` counts */
  countRecipient(recipient: string, delta: 1 | -1): void;
  /** the hellos of this server in flight to Redis (a connect storm waits its turn here) */
  hellos: Gate;
  onClose(connection: Connection): void;
}

/** A hello refused: the error the client is told, and the WebSocket close code that follows it. */
export class Refusal extends DpsError {
  constructor(
    err: DpsError,
    readonly closeCode: number,
  ) {
    super(err.code, err.message, { cause: err.cause });
  }
}

/** Connection ids: a random prefix per process, then the connection's number there. */
const CONN_PREFIX = nanoid(12);
let connections = 0;

export abstract class Connection implements LiveSink, HandOverHost {
  /** this connection's number in its process: its id is made from it when asked (a string each is ~40 B) */
  readonly #seq = ++connections;
  #state: SessionState = 'hello';
  readonly interest = new Interest();
  protected readonly position: Position;
  /** made at the first token accepted with auth on; auth off has no token and no expiry to hold */
  #credentials: Credentials | undefined;
  protected stream: HandOver | undefined;
  /** ms since the process started, whole: a small integer, where Date.now() would box a number for each connection */
  protected readonly openedAt = Math.trunc(performance.now());
  /** how it ended (a WebSocket close code; 1006 for a peer that vanished) */
  protected closeCode = 0;
  /** counted in `connectionsOf` its recipient (admitted, not closed yet) */
  #counted = false;
  /** `ws`, `sse` or `poll`: in logs */
  abstract readonly kind: string;

  constructor(protected readonly deps: ConnectionDeps) {
    countMove(deps.states, null, 'hello');
    this.position = new Position(deps.store, deps.log, this);
  }

  /** This connection's credentials (with auth off, a passing one each time: nothing of it is kept). */
  protected get credentials(): Credentials {
    if (!this.deps.auth.enabled) return new Credentials(this.deps.auth, this);
    this.#credentials ??= new Credentials(this.deps.auth, this);
    return this.#credentials;
  }

  /** Credentials: a grant accepted (at hello, or by `auth`). */
  applyGrant(grant: Grant): void {
    this.interest.grant = grant;
  }

  /** Credentials: the token expired without a successful `auth`. */
  tokenExpired(): void {
    this.close(CloseCode.unauthorized, 'token expired');
  }

  /** Position: the log was reset under this connection (new epoch). */
  epochGone(): void {
    this.close(CloseCode.goingAway, 'the log was reset (new epoch), reconnect');
  }

  /** This connection's id (in welcome and logs), unique across processes. */
  get conn(): string {
    return `${CONN_PREFIX}${this.#seq.toString(36)}`;
  }

  get state(): SessionState {
    return this.#state;
  }

  get closed(): boolean {
    return this.#state === 'closed';
  }

  get recipient(): string {
    return this.position.recipient;
  }

  get setKey(): string {
    return this.position.setKey;
  }

  get epoch(): string {
    return this.position.epoch;
  }

  get patternList(): string[] {
    return this.interest.list;
  }

  /** The only writer of the state: refuses a move the state machine does not have (session-state.ts). */
  setState(next: SessionState): void {
    const from = this.#state;
    if (from === next) return;
    if (!canMove(from, next)) {
      this.deps.log.error('illegal connection state change refused', { conn: this.conn, from, to: next });
      return;
    }
    this.#state = next;
    countMove(this.deps.states, from, next);
    this.deps.log.debug(`${from} -> ${next}`, { conn: this.conn });
  }

  /** Ends the connection, telling the client why with a WebSocket close code (and its meaning on other carriers). */
  abstract close(code: number, reason: string): void;

  /** A failure that leaves the connection unusable: say why, then let the client reconnect. */
  abstract fail(err: unknown): void;

  /** Every DPS_HEARTBEAT_INTERVAL: a WebSocket pings its peer. */
  heartbeat(): void {}

  /** Every DPS_SSE_KEEPALIVE: an SSE stream writes a comment. */
  keepAlive(): void {}

  /** Graceful shutdown: the acks received so far are stored, then the connection closes with 1001 (reconnect elsewhere). */
  async shutdown(): Promise<void> {
    if (this.#state !== 'hello' && this.#state !== 'closed') await this.position.flush();
    this.close(CloseCode.goingAway, 'server shutting down');
  }

  // The bridge's side (LiveSink): live messages go to the stream, which buffers them until it is live.
  offerLive(id: number, ch: string, wire: Buffer): void {
    this.stream?.offerLive(id, ch, wire);
  }

  offerGap(id: number, ch: string): void {
    this.stream?.offerGap(id, ch);
  }

  liveLost(): void {
    this.stream?.liveLost();
  }

  /** An error as the client is told it (a Redis failure as `unavailable`). */
  protected dpsError(err: unknown): DpsError {
    const e = toDpsError(err, this.deps.store.redisReady);
    if (e.code === 'internal') this.deps.log.error('request failed', { conn: this.conn, err: String(err), cause: String(e.cause ?? '') });
    return e;
  }

  /**
   * Admits `hello` (its token, its patterns, the recipient's connection limit), registers it live (buffered from then
   * on, so nothing is missed while the store answers), then lets the store decide where it resumes. Throws a Refusal
   * (or the store's error); undefined when the connection closed meanwhile. The caller greets its client, then `begin`s.
   */
  protected async open(hello: HelloFrame, out: Outlet, opts: StreamOptions): Promise<HelloResult | undefined> {
    const { deps } = this;
    this.setState('opening');
    try {
      await this.credentials.admit(hello.token, hello.recipient);
    } catch (err) {
      throw new Refusal(this.dpsError(err), CloseCode.unauthorized);
    }
    if (this.closed) return;
    const problem = patternProblem(hello.subs, deps.config);
    if (problem) throw new Refusal(new DpsError('bad_request', problem), CloseCode.protocolViolation);
    if (deps.connectionsOf(hello.recipient) >= deps.config.maxConnectionsPerRecipient)
      throw new Refusal(new DpsError('rate_limited', 'too many connections for this recipient'), CloseCode.rateLimited);
    for (const p of hello.subs) this.interest.add(p, 0);
    this.stream = new HandOver(deps, this, out, opts);
    this.position.recipient = hello.recipient;
    deps.countRecipient(hello.recipient, 1);
    this.#counted = true;
    await deps.bridge.add(this, hello.subs);
    if (this.closed) return;
    const setKey = this.interest.setKey();
    const r = await deps.hellos.run(async () => (this.closed ? undefined : deps.store.hello(hello.recipient, setKey, hello)));
    if (this.closed || !r) return;
    // One string for all connections of the epoch, not a copy each.
    const epoch = r.epoch === deps.store.epoch ? deps.store.epoch : r.epoch;
    this.position.start({ recipient: hello.recipient, epoch, setKey, resumeFrom: r.resumeFrom, acked: r.acked });
    return r;
  }

  /** Starts the stream once the client was greeted: replay after `resumeFrom`, then live. */
  protected begin(r: HelloResult): void {
    this.deps.log.info('connection open', {
      conn: this.conn,
      kind: this.kind,
      recipient: this.recipient,
      patterns: this.interest.size,
      resumeFrom: r.resumeFrom,
      head: r.head,
    });
    void this.stream?.start(r.resumeFrom, r.head);
  }

  /** The connection is over, however it ended: nothing more is held, its acks are stored, the server forgets it. */
  protected onClosed(): void {
    if (this.closed) return;
    const greeted = this.#state !== 'hello';
    this.setState('closed');
    this.#credentials?.stop();
    this.stream?.end();
    this.deps.bridge.remove(this, this.interest.list);
    if (this.#counted) this.deps.countRecipient(this.recipient, -1);
    if (greeted) {
      void this.position.flush();
      this.deps.log.info('connection closed', {
        conn: this.conn,
        kind: this.kind,
        recipient: this.recipient,
        code: this.closeCode || undefined,
        durationMs: Math.trunc(performance.now()) - this.openedAt,
        sentLive: this.stream?.sentLive ?? 0,
        sentReplayed: this.stream?.sentReplayed ?? 0,
        acked: this.position.acked,
      });
    }
    this.deps.onClose(this);
  }
}
