// One WebSocket connection: hello, replay then live (gapless hand-over), acks, sub/unsub, publish.
import type { Socket } from 'node:net';
import {
  type ClientFrame,
  CloseCode,
  decodeClientFrame,
  type ErrorCode,
  type HelloFrame,
  type Matcher,
  patternSetKey,
  type Ref,
  type ServerFrame,
} from '@durable-pubsub/client-sdk/protocol';
import { nanoid } from 'nanoid';
import type { WebSocket } from 'ws';
import { type Authenticator, type Grant, OPEN_GRANT } from './auth';
import { type Bridge, type LiveSink, validFrame } from './bridge';
import type { Config } from './config';
import { corkForBurst } from './cork';
import { DpsError, toDpsError } from './errors';
import type { Logger } from './log';
import { matcherFor } from './matchers';
import type { Stats } from './metrics';
import { drained } from './pacing';
import { type ReplayFilter, type ReplayItem, ReplayPass } from './replay';
import type { Store } from './store';
import { joinFrames, payloadOf, sharedMsgsFrames, textFrame } from './wire';

export type SessionState = 'hello' | 'catching-up' | 'live' | 'closed';

export interface SessionDeps {
  store: Store;
  bridge: Bridge;
  config: Config;
  log: Logger;
  stats: Stats;
  auth: Authenticator;
  /** other open connections of `recipient` on this node */
  connectionsOf(recipient: string): number;
  onClose(session: Session): void;
}

interface Sub {
  matcher: Matcher;
  /** only ids above this are delivered for this pattern (`sub` is live from now on) */
  since: number;
}

interface Buffered {
  id: number;
  ch: string;
  /** the frame as WebSocket bytes */
  wire: Buffer;
}

const TEXT = { binary: false } as const;
const ignore = () => {};

/** A WebSocket close reason is at most 123 bytes of UTF-8. */
function closeReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let cut = reason.slice(0, 120);
  while (Buffer.byteLength(cut) > 120) cut = cut.slice(0, -1);
  return `${cut}…`;
}

export class Session implements LiveSink, ReplayFilter {
  readonly conn = nanoid();
  state: SessionState = 'hello';
  recipient = '';
  /** the key of this connection's pattern set (patternSetKey): its durable position is the set's */
  setKey = '';
  epoch = '';
  private readonly patterns = new Map<string, Sub>();
  /** per channel, the lowest `since` of the patterns matching it (made on first use: most connections never replay) */
  private floors: Map<string, number | null> | undefined;
  private anySince = false;
  /** the hello asked for catch-up in `msgs` frames */
  private batch = false;
  /** the hello asked that every replayed message be checked (valid JSON) before it is sent */
  private checked = false;
  /** highest msg id sent on this connection (or the resume point) */
  private lastSent = 0;
  /** the stored position of this connection's set, as far as this connection knows */
  private acked = 0;
  /** this connection's own position: where it resumed, raised by its own acks (what a sub/unsub carries to its new set) */
  private own = 0;
  /** where this connection's stream started: it has every wanted message after it on its hello patterns */
  private resumedFrom = 0;
  /** its acks may move its set's position (see movePatterns) */
  private ackable = true;
  private ackWanted = 0;
  private ackFlush: Promise<void> | null = null;
  /** a sub/unsub moving the position to the new set: acks wait for it, so none lands on a set not yet there */
  private moving: Promise<unknown> = Promise.resolve();
  /** live messages held while catching up */
  private buffer: Buffered[] = [];
  /** live messages may have been missed since the current pass read its head: run another */
  private dirty = false;
  private catching = false;
  private helloTimer: NodeJS.Timeout | undefined;
  private readonly openedAt = Date.now();
  private grant: Grant = OPEN_GRANT;
  /** token bucket for the frame rate limit */
  private tokens: number;
  private tokensAt = Date.now();
  private expTimer: NodeJS.Timeout | undefined;
  /** per-connection counts for the close log line */
  private sentLive = 0;
  private sentReplayed = 0;
  private closeCode = 0;
  private readonly socket: Socket | undefined;
  /** the peer answered a ping, or sent anything, since the previous heartbeat */
  private heard = true;

  constructor(
    private readonly ws: WebSocket,
    private readonly deps: SessionDeps,
  ) {
    this.socket = (ws as unknown as { _socket?: Socket })._socket;
    this.tokens = deps.config.maxFramesPerSec;
    ws.on('message', (data, isBinary) => {
      this.heard = true;
      this.onFrame(data as Buffer, isBinary);
    });
    ws.on('pong', () => {
      this.heard = true;
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      this.onClosed();
    });
    ws.on('error', ignore); // 'close' follows
    this.helloTimer = setTimeout(() => this.close(CloseCode.helloTimeout, 'no hello in time'), deps.config.helloTimeoutMs);
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  get patternList(): string[] {
    return [...this.patterns.keys()];
  }

  send(frame: ServerFrame): void {
    this.sendText(JSON.stringify(frame));
  }

  private sendText(text: string): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    // Answers of one burst (e.g. a batch's pubacks resolved together) go out in one write.
    corkForBurst(this.socket);
    this.ws.send(text, TEXT);
  }

  /** The most frequent answer, written without building an object first. */
  private puback(ref: Ref | undefined, id: number, dup: boolean): void {
    const refField = ref === undefined ? '' : `,"ref":${JSON.stringify(ref)}`;
    this.sendText(`{"op":"puback"${refField},"id":${id}${dup ? ',"dup":true' : ''}}`);
  }

  /**
   * The server's heartbeat (every DPS_HEARTBEAT_INTERVAL): a connection that has not answered the previous ping, nor
   * sent anything since, is dead (its peer vanished without a close: a phone that changed networks, a laptop that
   * slept) and is terminated, so it stops counting against any limit; otherwise it is pinged.
   */
  heartbeat(): void {
    if (this.closed) return;
    if (!this.heard) {
      this.deps.stats.deadTerminated++;
      this.closeCode = 1006;
      this.ws.terminate();
      return this.onClosed();
    }
    this.heard = false;
    if (this.ws.readyState === this.ws.OPEN) this.ws.ping();
  }

  close(code: number, reason: string): void {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(code, closeReason(reason));
    this.onClosed();
  }

  private error(code: ErrorCode, message: string, ref?: Ref): void {
    this.send(ref === undefined ? { op: 'error', code, message } : { op: 'error', code, message, ref });
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

  /** A token per frame, refilled at the configured rate; a client that runs out is closed (4429). */
  private takeToken(): boolean {
    const rate = this.deps.config.maxFramesPerSec;
    const now = Date.now();
    this.tokens = Math.min(rate, this.tokens + ((now - this.tokensAt) * rate) / 1000);
    this.tokensAt = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  /** Why a pattern set is refused, or null. */
  private patternProblem(patterns: string[]): string | null {
    const { maxPatterns, maxPatternStars } = this.deps.config;
    if (patterns.length > maxPatterns) return `at most ${maxPatterns} patterns per connection`;
    for (const p of patterns) if ((p.match(/\*/g)?.length ?? 0) > maxPatternStars) return `at most ${maxPatternStars} '*' in a pattern`;
    return null;
  }

  private handleFrame(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    if (!this.takeToken()) {
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
        return this.onAck(frame.id);
      case 'ping':
        return this.send({ op: 'pong' });
      case 'sub':
        this.onSub(frame.pattern, frame.ref).catch((err) => this.fail(err, frame.ref));
        return;
      case 'unsub':
        return this.onUnsub(frame.pattern, frame.ref);
      case 'pub':
        if (!this.grant.canPublish(frame.ch))
          return this.error('forbidden', `publishing on ${JSON.stringify(frame.ch.slice(0, 60))} is not granted`, frame.ref);
        this.deps.store.publishThen(frame.ch, frame.data, frame.key, (err, id, dup) =>
          err ? this.reject(err, frame.ref) : this.puback(frame.ref, id, dup),
        );
        return;
      case 'auth':
        this.onAuth(frame.token).catch((err) => this.reject(err));
        return;
    }
  }

  /** Verifies a token for this recipient and applies its grant and expiry. */
  private async authenticate(token: string | undefined, recipient: string): Promise<Grant> {
    const grant = await this.deps.auth.verify(token);
    if (this.deps.auth.enabled && grant.subject !== recipient) {
      throw new DpsError('unauthorized', 'the token is for another recipient');
    }
    return grant;
  }

  private applyGrant(grant: Grant): void {
    this.grant = grant;
    this.floors = undefined;
    clearTimeout(this.expTimer);
    if (grant.exp !== null) {
      // A token that expires without a successful `auth` ends the connection.
      const ms = Math.min(2 ** 31 - 1, Math.max(0, grant.exp * 1000 - Date.now()));
      this.expTimer = setTimeout(() => this.close(CloseCode.unauthorized, 'token expired'), ms);
    }
  }

  private async onAuth(token: string): Promise<void> {
    if (!this.deps.auth.enabled) return this.error('bad_request', 'authentication is not enabled on this server');
    const grant = await this.authenticate(token, this.recipient);
    if (this.closed) return;
    this.applyGrant(grant);
    this.send({ op: 'authed', exp: grant.exp ?? 0 });
  }

  private reject(err: unknown, ref?: Ref): void {
    const e = toDpsError(err, this.deps.store.redisReady);
    if (e.code === 'internal') this.deps.log.error('request failed', { conn: this.conn, err: String(err), cause: String(e.cause ?? '') });
    this.error(e.code, e.message, ref);
  }

  /** A failure that leaves the connection unusable: say why, then let the client reconnect. */
  private fail(err: unknown, ref?: Ref): void {
    if (this.closed) return;
    this.reject(err, ref);
    this.close(CloseCode.goingAway, 'server could not serve this connection, reconnect');
  }

  private async onHello(hello: HelloFrame): Promise<void> {
    clearTimeout(this.helloTimer);
    this.helloTimer = undefined;
    // From here on live messages are buffered, so none is missed while we set up.
    this.state = 'catching-up';
    try {
      this.applyGrant(await this.authenticate(hello.token, hello.recipient));
    } catch (err) {
      this.reject(err);
      return this.close(CloseCode.unauthorized, err instanceof Error ? err.message : 'unauthorized');
    }
    if (this.closed) return;
    const problem = this.patternProblem(hello.subs);
    if (problem) {
      this.error('bad_request', problem);
      return this.close(CloseCode.protocolViolation, problem);
    }
    if (this.deps.connectionsOf(hello.recipient) >= this.deps.config.maxConnectionsPerRecipient) {
      this.error('rate_limited', 'too many connections for this recipient');
      return this.close(CloseCode.rateLimited, 'too many connections for this recipient');
    }
    this.recipient = hello.recipient;
    this.batch = hello.batch === true;
    this.checked = hello.checked === true;
    for (const p of hello.subs) this.patterns.set(p, { matcher: matcherFor(p), since: 0 });
    await this.deps.bridge.add(this, hello.subs);
    if (this.closed) return;
    this.setKey = patternSetKey(hello.subs);
    const r = await this.deps.store.hello(hello.recipient, this.setKey, hello);
    if (this.closed) return;
    // One string for all connections of the epoch, not a copy each.
    this.epoch = r.epoch === this.deps.store.epoch ? this.deps.store.epoch : r.epoch;
    this.lastSent = r.resumeFrom;
    this.own = r.resumeFrom;
    this.resumedFrom = r.resumeFrom;
    this.acked = r.acked;
    this.send({
      op: 'welcome',
      v: 1,
      conn: this.conn,
      recipient: this.recipient,
      epoch: r.epoch,
      resumeFrom: r.resumeFrom,
      head: r.head,
      ...(r.epochChanged ? { epochChanged: true as const } : {}),
    });
    this.deps.log.info('connection open', {
      conn: this.conn,
      recipient: this.recipient,
      patterns: hello.subs.length,
      resumeFrom: r.resumeFrom,
      head: r.head,
    });
    void this.catchUp(r.head);
  }

  /** Does this connection want message `id` of `ch`? */
  wants(ch: string, id: number): boolean {
    if (this.grant.limitsReading && !this.grant.canRead(ch)) return false;
    for (const s of this.patterns.values()) if (id > s.since && s.matcher(ch)) return true;
    return false;
  }

  channelFloor(ch: string): number | null {
    this.floors ??= new Map();
    let floor = this.floors.get(ch);
    if (floor === undefined) {
      floor = null;
      // Isolation: a channel outside the grant is neither replayed nor reported as a gap.
      if (this.grant.limitsReading && !this.grant.canRead(ch)) {
        this.floors.set(ch, null);
        return null;
      }
      for (const s of this.patterns.values()) if (s.matcher(ch) && (floor === null || s.since < floor)) floor = s.since;
      this.floors.set(ch, floor);
    }
    return floor;
  }

  offerLive(id: number, ch: string, wire: Buffer): void {
    if (id <= this.lastSent) return; // overlapping patterns, or already replayed
    if (this.grant.limitsReading && !this.grant.canRead(ch)) return;
    if (this.anySince && !this.wants(ch, id)) return;
    if (this.state === 'live') {
      if (this.ws.bufferedAmount > this.deps.config.sendHighWater) {
        // A slow reader is not dropped: it is served from the store, paced by its socket.
        this.deps.stats.slowFallbacks++;
        this.deps.log.debug('slow consumer, serving from the store', { conn: this.conn });
        void this.catchUp();
        return;
      }
      corkForBurst(this.socket);
      this.writeRaw(wire);
      this.lastSent = id;
      this.sentLive++;
      this.deps.stats.deliveredLive++;
    } else if (this.state === 'catching-up') {
      const last = this.buffer[this.buffer.length - 1];
      if (last && id <= last.id) return;
      if (this.buffer.length >= this.deps.config.catchUpBuffer) {
        this.buffer = [];
        this.dirty = true;
        return;
      }
      this.buffer.push({ id, ch, wire });
    }
  }

  /** A live message that cannot be delivered (not one valid JSON message): a gap in its place, in id order. */
  offerGap(id: number, ch: string): void {
    if (id <= this.lastSent || (this.grant.limitsReading && !this.grant.canRead(ch)) || !this.wants(ch, id)) return;
    this.deps.stats.gaps++;
    const gap = { op: 'gap', ch, after: id - 1, upTo: id, reason: 'invalid' } as const;
    if (this.state === 'live') {
      this.send(gap);
      this.lastSent = id;
    } else if (this.state === 'catching-up') {
      const last = this.buffer[this.buffer.length - 1];
      if (!last || id > last.id) this.buffer.push({ id, ch, wire: textFrame(Buffer.from(JSON.stringify(gap))) });
    }
  }

  /** The bridge lost its subscription: whatever was live must be re-read from the store. */
  liveLost(): void {
    if (this.state === 'live' || this.state === 'catching-up') {
      this.dirty = true;
      if (this.state === 'live') void this.catchUp();
    }
  }

  /**
   * Replay then live, with no gap and no duplicate. Each pass first makes sure
   * the bridge delivers live messages (which are buffered from then on), then
   * reads the head H and sends everything wanted up to H from the store. If no
   * live message could have been missed since H was read (no buffer overflow,
   * no subscriber drop), the buffer holds everything after H: it is flushed in
   * the same tick and the connection is live. Otherwise another pass follows.
   *
   * `helloHead` is the head the hello script read, after the bridge was delivering this connection's
   * patterns: when it is the resume point (a new recipient, `from: "head"`, or one that acked
   * everything), the store holds nothing wanted and everything after it reaches the buffer, so the
   * first pass reads nothing (unless something was missed since: `dirty`).
   */
  private async catchUp(helloHead?: number): Promise<void> {
    if (this.catching) {
      this.dirty = true;
      return;
    }
    this.catching = true;
    this.state = 'catching-up';
    try {
      let head = 0;
      do {
        await this.deps.bridge.ready();
        await this.writable();
        if (this.closed) return;
        if (helloHead === this.lastSent && !this.dirty) {
          head = helloHead;
          helloHead = undefined;
          continue;
        }
        helloHead = undefined;
        this.dirty = false;
        const pass = new ReplayPass(this.deps.store, this, this.lastSent, this.deps.config.replayPage);
        try {
          await pass.start();
          head = pass.head;
          for (let page = await pass.nextPage(); page; page = await pass.nextPage()) {
            if (this.closed) return;
            this.sendPage(page);
            await this.writable();
          }
        } finally {
          pass.end();
        }
        if (this.closed) return;
      } while (this.dirty);
      // No await from here on: nothing can arrive between the flush and going live.
      for (const m of this.buffer) {
        if (m.id > this.lastSent && this.wants(m.ch, m.id)) {
          this.writeRaw(m.wire);
          this.lastSent = m.id;
        }
      }
      this.buffer = [];
      this.state = 'live';
      this.send({ op: 'live', id: Math.max(head, this.lastSent) });
    } catch (err) {
      this.fail(err);
    } finally {
      this.catching = false;
    }
  }

  private sendPage(page: ReplayItem[]): void {
    this.socket?.cork();
    // Runs of messages go out as one buffer of frames (most often a view of a shared read); a gap report ends a run.
    const run: Buffer[] = [];
    const flushRun = () => {
      if (run.length) this.writeRaw(this.batch ? sharedMsgsFrames(run) : joinFrames(run));
      run.length = 0;
    };
    for (const item of page) {
      if ('gap' in item) {
        flushRun();
        this.deps.stats.gaps++;
        this.send({ op: 'gap', ch: item.ch, after: item.after, upTo: item.upTo, reason: 'retention' });
      } else if (this.checked && item.id > this.lastSent && !validFrame(payloadOf(item.frame))) {
        // A client that asked (after it met a frame it could not parse) gets a message stored around the server's
        // checks as a gap; checking every replayed message for every client would cost ~1 µs each on every replay.
        flushRun();
        this.deps.stats.gaps++;
        this.send({ op: 'gap', ch: item.ch, after: item.id - 1, upTo: item.id, reason: 'invalid' });
        this.lastSent = item.id;
      } else if (item.id > this.lastSent) {
        run.push(item.frame);
        this.lastSent = item.id;
        this.sentReplayed++;
        this.deps.stats.replayed++;
      }
    }
    flushRun();
    this.socket?.uncork();
  }

  /**
   * Bytes already framed (wire.ts), written next to ws's own frames, in order. Only while the socket is
   * open, as ws.send does: nothing may follow a close frame, and every write after the socket's end fails
   * by building an Error (live messages reaching 2,000 closing sessions took the storm from 6 s to 21 s).
   */
  private writeRaw(bytes: Buffer): void {
    if (this.ws.readyState === this.ws.OPEN) this.socket?.write(bytes);
  }

  /** Resolves once the socket's send buffer is below the high-water mark (replay is paced by the reader). */
  private writable(): Promise<void> {
    if (this.closed || this.ws.bufferedAmount <= this.deps.config.sendHighWater) return Promise.resolve();
    return drained(this.ws, this.socket, {
      highWater: this.deps.config.sendHighWater,
      timeoutMs: this.deps.config.slowConsumerTimeoutMs,
      stopped: () => this.closed,
      // A reader that makes no progress at all for the timeout is closed (4508): it resumes from its acked position.
      onStalled: () => {
        this.deps.stats.slowClosed++;
        this.close(CloseCode.slowConsumer, 'slow consumer: no progress');
        // The close frame waits behind data the reader does not take: free the socket now.
        setTimeout(() => this.ws.terminate(), 1000).unref();
      },
    });
  }

  private onAck(id: number): void {
    // Never beyond what this connection was sent: an ack must not trim unseen messages.
    const capped = Math.min(id, this.lastSent);
    if (capped > this.own) this.own = capped;
    if (!this.ackable || capped <= this.acked || capped <= this.ackWanted) return;
    this.ackWanted = capped;
    void this.flushAcks();
  }

  /** Stores the newest ack; one write at a time, and the promise covers acks that arrive meanwhile. */
  private flushAcks(): Promise<void> {
    this.ackFlush ??= this.writeAcks().finally(() => {
      this.ackFlush = null;
    });
    return this.ackFlush;
  }

  private async writeAcks(): Promise<void> {
    try {
      for (;;) {
        await this.moving;
        if (!this.ackable || this.ackWanted <= this.acked) return;
        const id = this.ackWanted;
        const setKey = this.setKey;
        const stored = await this.deps.store.ack(this.recipient, setKey, id, this.epoch);
        if (stored.status === 'epoch-gone') return this.close(CloseCode.goingAway, 'the log was reset (new epoch), reconnect');
        // Moved to another set meanwhile: that set's position is what counts now.
        if (setKey === this.setKey) this.acked = stored.status === 'forgotten' ? id : Math.max(this.acked, stored.position);
      }
    } catch {
      // Redis is down: the next (cumulative) ack carries this one.
    }
  }

  /** Graceful shutdown: the acks received so far are stored, then the socket closes with 1001 (reconnect elsewhere). */
  async shutdown(): Promise<void> {
    if (this.state !== 'hello' && this.state !== 'closed') await this.flushAcks();
    this.close(CloseCode.goingAway, 'server shutting down');
  }

  /**
   * After a sub/unsub the connection uses another pattern set. A set the recipient has not used starts at this
   * connection's own position; one it has keeps its position (another device may rely on it), and this connection
   * acks it only if it can vouch for everything after that position: a pattern subscribed mid-connection has no
   * backlog, so its messages before `since` never reached it. Otherwise its acks would let that device's unseen
   * messages be trimmed or skipped; it keeps its own position for the next move instead.
   */
  private movePatterns(): void {
    this.floors = undefined;
    const setKey = patternSetKey(this.patterns.keys());
    if (setKey === this.setKey) return;
    const from = this.setKey;
    const pending = this.ackable && this.ackWanted > this.acked ? this.ackWanted : 0;
    this.setKey = setKey;
    this.ackable = false;
    const position = this.own;
    let coveredFrom = this.resumedFrom;
    for (const s of this.patterns.values()) coveredFrom = Math.max(coveredFrom, s.since);
    const { store } = this.deps;
    this.moving = this.moving
      .then(async () => {
        // Acks received before the move were for the old set.
        if (pending) await store.ack(this.recipient, from, pending, this.epoch);
        const placed = await store.subscriptions.place(this.recipient, setKey, position);
        if (setKey !== this.setKey) return;
        this.acked = this.ackWanted = placed.status === 'forgotten' ? position : placed.position;
        this.ackable = placed.status === 'placed' && (!placed.existed || placed.position >= coveredFrom);
        if (this.ackable && this.own > this.acked) {
          this.ackWanted = this.own;
          void this.flushAcks();
        }
      })
      .catch((err) => this.deps.log.debug('could not move to the new pattern set', { conn: this.conn, err: String(err) }));
  }

  private async onSub(pattern: string, ref?: Ref): Promise<void> {
    const problem = this.patterns.has(pattern) ? null : this.patternProblem([...this.patterns.keys(), pattern]);
    if (problem) return this.error('bad_request', problem, ref);
    if (!this.patterns.has(pattern)) {
      // The bridge may offer this pattern's messages before `since` is known: filter them all.
      this.anySince = true;
      await this.deps.bridge.add(this, [pattern]);
      if (this.closed) return;
      // Live from now on: nothing at or below what this connection has seen go by.
      this.patterns.set(pattern, { matcher: matcherFor(pattern), since: Math.max(this.lastSent, this.deps.bridge.lastId) });
      this.movePatterns();
    }
    this.send(ref === undefined ? { op: 'subbed', pattern } : { op: 'subbed', pattern, ref });
  }

  private onUnsub(pattern: string, ref?: Ref): void {
    if (this.patterns.delete(pattern)) {
      this.deps.bridge.remove(this, [pattern]);
      this.movePatterns();
    }
    this.send(ref === undefined ? { op: 'unsubbed', pattern } : { op: 'unsubbed', pattern, ref });
  }

  private onClosed(): void {
    if (this.state === 'closed') return;
    const wasGreeted = this.state !== 'hello';
    this.state = 'closed';
    clearTimeout(this.helloTimer);
    clearTimeout(this.expTimer);
    this.buffer = [];
    this.deps.bridge.remove(this, this.patterns.keys());
    if (wasGreeted) {
      void this.flushAcks();
      this.deps.log.info('connection closed', {
        conn: this.conn,
        recipient: this.recipient,
        code: this.closeCode || undefined,
        durationMs: Date.now() - this.openedAt,
        sentLive: this.sentLive,
        sentReplayed: this.sentReplayed,
        acked: this.acked,
      });
    }
    this.deps.onClose(this);
  }
}
