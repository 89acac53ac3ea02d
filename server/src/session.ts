// One WebSocket connection: its frames (hello, acks, sub/unsub, publish, auth), its heartbeat, its limits and its close.
import {
  type ClientFrame,
  CloseCode,
  decodeClientFrame,
  type ErrorCode,
  encodeAuthed,
  encodeError,
  encodePong,
  encodePuback,
  encodeSubbed,
  encodeUnsubbed,
  encodeWelcome,
  type HelloFrame,
  type Ref,
} from '@durable-pubsub/client-sdk/protocol';
import type { RawData, WebSocket } from 'ws';
import { Connection, type ConnectionDeps, Refusal } from './connection';
import type { BurstCorker } from './cork';
import { streamOptions } from './handover';
import { patternProblem } from './interest';
import { type Bucket, takeToken } from './rate-limit';
import { type OutletOptions, WsOutlet } from './ws-outlet';

export type { SessionState } from './session-state';

export interface SessionDeps extends ConnectionDeps {
  corker: BurstCorker;
}

const ignore = () => {};

// ws calls its listeners with the socket as `this`: one function each for every connection, which the socket leads to
// its session, instead of three closures (and their context) per connection.
const SESSION = Symbol('session');
type Owned = WebSocket & { [SESSION]: Session };
function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  (this as Owned)[SESSION].received(data as Buffer, isBinary);
}
function onPong(this: WebSocket): void {
  (this as Owned)[SESSION].heard = true;
}
function onClose(this: WebSocket, code: number): void {
  (this as Owned)[SESSION].wsClosed(code);
}

/** The outlet settings, one object per server. */
const outletOptions = new WeakMap<SessionDeps, OutletOptions>();
function optionsOf(deps: SessionDeps): OutletOptions {
  let o = outletOptions.get(deps);
  if (!o) {
    o = { corker: deps.corker, highWater: deps.config.sendHighWater, stallMs: deps.config.slowConsumerTimeoutMs };
    outletOptions.set(deps, o);
  }
  return o;
}

export class Session extends Connection implements Bucket {
  // On the prototype, not a field of every connection.
  get kind(): string {
    return 'ws';
  }
  private readonly out: WsOutlet;
  private helloTimer: NodeJS.Timeout | undefined;
  /** the frame rate limit's bucket (rate-limit.ts) */
  tokens: number;
  tokensAt = Math.trunc(performance.now());
  /** the sub/unsub in progress and those behind it (patternOp) */
  private patternOps: Promise<void> | undefined;
  /** the peer answered a ping, or sent anything, since the previous heartbeat */
  heard = true;

  constructor(
    private readonly ws: WebSocket,
    protected override readonly deps: SessionDeps,
  ) {
    super(deps);
    this.tokens = deps.config.maxFramesPerSec;
    this.out = new WsOutlet(ws, optionsOf(deps), this);
    (ws as Owned)[SESSION] = this;
    ws.on('message', onMessage);
    ws.on('pong', onPong);
    ws.on('close', onClose);
    ws.on('error', ignore); // 'close' follows
    this.helloTimer = setTimeout(() => this.helloLate(), deps.config.helloTimeoutMs);
  }

  /**
   * No hello within DPS_HELLO_TIMEOUT, as far as this process read. Timers run before the loop reads its sockets: a
   * process busy for longer than the timeout would close a client whose hello came in time and waits unread (the
   * server's slowness, not the client's). The sockets are read first; then a connection still without hello is closed.
   */
  private helloLate(): void {
    setImmediate(() => {
      if (this.state === 'hello') this.close(CloseCode.helloTimeout, 'no hello in time');
    });
  }

  /** A frame from the peer. */
  received(data: Buffer, isBinary: boolean): void {
    this.heard = true;
    this.onFrame(data, isBinary);
  }

  wsClosed(code: number): void {
    this.closeCode = code;
    this.onClosed();
  }

  /** The outlet: a reader that makes no progress at all for the timeout is closed (4508); it resumes from its acked position. */
  stalled(): void {
    this.deps.stats.slowClosed++;
    this.close(CloseCode.slowConsumer, 'slow consumer: no progress');
  }

  /** A server frame's text (the protocol module's encoders build it). */
  private send(text: string): void {
    this.out.sendText(text);
  }

  /**
   * The server's heartbeat (every DPS_HEARTBEAT_INTERVAL): a connection that has not answered the previous ping, nor
   * sent anything since, is dead (its peer vanished without a close: a phone that changed networks, a laptop that
   * slept) and is terminated, so it stops counting against any limit; otherwise it is pinged.
   */
  override heartbeat(): void {
    if (this.closed) return;
    if (this.heard) return this.ping();
    // Its answer may be waiting unread (this process was busy, timers run before the loop reads its sockets): the
    // sockets are read first, then a connection that still said nothing is dead.
    setImmediate(() => {
      if (this.closed) return;
      if (this.heard) return this.ping();
      this.deps.stats.deadTerminated++;
      this.closeCode = 1006;
      this.ws.terminate();
      this.onClosed();
    });
  }

  private ping(): void {
    this.heard = false;
    if (this.out.open) this.ws.ping();
  }

  close(code: number, reason: string): void {
    this.out.close(code, reason);
    this.onClosed();
  }

  private error(code: ErrorCode, message: string, ref?: Ref): void {
    this.send(encodeError(code, message, ref));
  }

  private reject(err: unknown, ref?: Ref): void {
    const e = this.dpsError(err);
    this.error(e.code, e.message, ref);
  }

  /** A failure that leaves the connection unusable: say why, then let the client reconnect. */
  fail(err: unknown, ref?: Ref): void {
    if (this.closed) return;
    this.reject(err, ref);
    this.close(CloseCode.goingAway, 'server could not serve this connection, reconnect');
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    try {
      this.handleFrame(data, isBinary);
    } catch (err) {
      // A bug here must cost this connection, never the process and everyone else's messages.
      this.deps.log.error('frame handler failed', { conn: this.conn, err: String(err) });
      this.close(CloseCode.goingAway, 'internal error, reconnect');
    }
  }

  private handleFrame(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    // A token per frame, refilled at the configured rate; a client that runs out is closed (4429).
    if (!takeToken(this, this.deps.config.maxFramesPerSec)) {
      this.error('rate_limited', `more than ${this.deps.config.maxFramesPerSec} frames per second`);
      return this.close(CloseCode.rateLimited, 'rate limited');
    }
    if (isBinary) return this.close(CloseCode.protocolViolation, 'binary frames are not part of the protocol');
    const decoded = decodeClientFrame(data.toString('utf8'));
    if (!decoded.ok) {
      if (this.state === 'hello') return this.close(CloseCode.protocolViolation, decoded.message);
      this.error('bad_request', decoded.message, decoded.ref);
      // An op this server does not know may be a newer client's: keep the connection.
      if (decoded.error !== 'unknown_op') this.close(CloseCode.protocolViolation, decoded.message);
      return;
    }
    const frame = decoded.frame;
    if (this.state === 'hello') {
      if (frame.op !== 'hello') return this.close(CloseCode.protocolViolation, 'the first frame must be hello');
      this.onHello(frame).catch((err) => this.fail(err));
      return;
    }
    this.onOp(frame);
  }

  private onOp(frame: ClientFrame): void {
    switch (frame.op) {
      case 'hello':
        return this.close(CloseCode.protocolViolation, 'hello was already sent');
      case 'ack':
        this.deps.stats.acks++;
        return this.position.ack(frame.id, this.stream?.lastSent ?? 0);
      case 'ping':
        return this.send(encodePong());
      case 'sub':
        return this.patternOp(() => this.onSub(frame.pattern, frame.ref), frame.ref);
      case 'unsub':
        return this.patternOp(async () => this.onUnsub(frame.pattern, frame.ref), frame.ref);
      case 'pub':
        if (!this.interest.grant.canPublish(frame.ch))
          return this.error('forbidden', `publishing on ${JSON.stringify(frame.ch.slice(0, 60))} is not granted`, frame.ref);
        this.deps.store.publishThen(frame.ch, frame.data, frame.key, (err, id, dup) =>
          err ? this.reject(err, frame.ref) : this.send(encodePuback(frame.ref, id, dup)),
        );
        return;
      case 'auth':
        this.onAuth(frame.token).catch((err) => this.reject(err));
        return;
    }
  }

  /**
   * Runs a sub or unsub after those before it: a sub waits for the bridge, and an unsub of the same pattern sent
   * meanwhile must not find nothing to remove (answered first, and the pattern left subscribed).
   */
  private patternOp(op: () => Promise<void>, ref: Ref | undefined): void {
    this.patternOps = (this.patternOps ?? Promise.resolve()).then(op).catch((err) => this.fail(err, ref));
  }

  private async onAuth(token: string): Promise<void> {
    if (!this.credentials.enabled) return this.error('bad_request', 'authentication is not enabled on this server');
    const grant = await this.credentials.admit(token, this.recipient);
    if (this.closed) return;
    this.send(encodeAuthed(grant.exp ?? 0));
  }

  /** Who may connect, with which patterns; then registered live (buffered) before the store decides where it resumes. */
  private async onHello(hello: HelloFrame): Promise<void> {
    clearTimeout(this.helloTimer);
    this.helloTimer = undefined;
    let r: Awaited<ReturnType<Session['open']>>;
    try {
      r = await this.open(hello, this.out, streamOptions(hello.batch === true, hello.checked === true));
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      this.error(err.code, err.message);
      return this.close(err.closeCode, err.message);
    }
    if (!r) return;
    this.send(
      encodeWelcome({
        conn: this.conn,
        recipient: hello.recipient,
        epoch: r.epoch,
        resumeFrom: r.resumeFrom,
        head: r.head,
        epochChanged: r.epochChanged || undefined,
      }),
    );
    this.begin(r);
  }

  private async onSub(pattern: string, ref?: Ref): Promise<void> {
    const { interest } = this;
    const problem = interest.has(pattern) ? null : patternProblem([...interest.list, pattern], this.deps.config);
    if (problem) return this.error('bad_request', problem, ref);
    if (!interest.has(pattern)) {
      interest.expectPattern();
      await this.deps.bridge.add(this, [pattern]);
      if (this.closed) return;
      // Live from now on: nothing at or below what this connection has seen go by.
      interest.add(pattern, Math.max(this.stream?.lastSent ?? 0, this.deps.bridge.lastId));
      this.position.move(interest.setKey(), (from) => interest.coveredFrom(from));
    }
    this.send(encodeSubbed(pattern, ref));
  }

  private onUnsub(pattern: string, ref?: Ref): void {
    if (this.interest.delete(pattern)) {
      this.deps.bridge.remove(this, [pattern]);
      this.position.move(this.interest.setKey(), (from) => this.interest.coveredFrom(from));
    }
    this.send(encodeUnsubbed(pattern, ref));
  }

  protected override onClosed(): void {
    clearTimeout(this.helloTimer);
    super.onClosed();
  }
}
