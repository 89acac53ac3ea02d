// Catch-up then live for one connection: replay from the store, then the buffered live messages, with no gap and no duplicate.

import { encodeGap, encodeLive } from '@durable-pubsub/client-sdk/protocol';
import { validFrame } from './bridge';
import { type ReadAhead, type ReplayFilter, type ReplayItem, ReplayPass, type ReplayStore } from './replay';
import type { SessionState } from './session-state';
import { joinFrames, type MsgsCache, payloadOf, textFrame } from './wire';

/** The socket as the hand-over writes to it (ws-outlet.ts; a fake one in tests). */
export interface Outlet {
  readonly open: boolean;
  /** bytes waiting to be sent */
  readonly buffered: number;
  sendText(text: string): void;
  /** bytes already framed as WebSocket text frames (wire.ts) */
  writeFrames(bytes: Buffer): void;
  /** the writes of this burst of synchronous work go out together */
  burst(): void;
  cork(): void;
  uncork(): void;
  /**
   * Resolves once the send buffer is below its high-water mark, or `highWater` when given (a catch-up's share of the
   * server's budget), or the reader stalled and the connection closes.
   */
  writable(highWater?: number): Promise<void>;
}

/** The connection the hand-over serves: its state, and what it reads. */
export interface HandOverHost {
  readonly state: SessionState;
  /** the only way the hand-over changes the connection's state: catching-up <-> live */
  setState(next: 'catching-up' | 'live'): void;
  readonly interest: ReplayFilter & { wants(ch: string, id: number): boolean; takesOffer(ch: string, id: number): boolean };
  /** the catch-up failed (Redis): the connection cannot be served */
  fail(err: unknown): void;
}

export interface HandOverDeps {
  store: ReplayStore;
  /** resolves once the bridge delivers every registered pattern live */
  bridge: { ready(): Promise<void> };
  config: { catchUpBuffer: number; replayPage: number; sendHighWater: number };
  stats: { deliveredLive: number; replayed: number; gaps: number; slowFallbacks: number };
  readAhead: ReadAhead;
  msgs: MsgsCache;
  checks: FrameChecks;
}

/**
 * validFrame for checked replay, once per stored frame: readers resuming from one point share a read (its frames are
 * the same views), and each would otherwise parse every message again (~1.6 µs each, per reader). One per server.
 */
export class FrameChecks {
  private readonly known = new WeakMap<Buffer, boolean>();

  valid(frame: Buffer): boolean {
    let v = this.known.get(frame);
    if (v === undefined) this.known.set(frame, (v = validFrame(payloadOf(frame))));
    return v;
  }
}

export interface StreamOptions {
  /** the client reads `msgs` frames (hello.batch) */
  readonly batch: boolean;
  /** every replayed message is checked before it is sent (hello.checked) */
  readonly checked: boolean;
}

const OPTIONS: readonly StreamOptions[] = [
  { batch: false, checked: false },
  { batch: false, checked: true },
  { batch: true, checked: false },
  { batch: true, checked: true },
].map((o) => Object.freeze(o));

/** The options of a stream: one of four shared objects, not an object per connection. */
export function streamOptions(batch: boolean, checked: boolean): StreamOptions {
  return OPTIONS[(batch ? 2 : 0) + (checked ? 1 : 0)] as StreamOptions;
}

interface Buffered {
  id: number;
  ch: string;
  /** the frame as WebSocket bytes */
  wire: Buffer;
}

/**
 * One connection's stream. Live messages the bridge offers are buffered until the catch-up reaches them, then
 * written as they come; a reader that falls behind, or a lost subscription, sends the stream back to the store.
 */
export class HandOver {
  /** highest msg id sent on this connection (or the resume point) */
  lastSent = 0;
  sentLive = 0;
  sentReplayed = 0;
  /** live messages held while catching up (none for a connection that is live: made when one is held) */
  private buffer: Buffered[] | undefined;
  /** live messages may have been missed since the current pass read its head: run another */
  private dirty = false;

  constructor(
    private readonly deps: HandOverDeps,
    private readonly host: HandOverHost,
    private readonly out: Outlet,
    private readonly opts: StreamOptions,
  ) {}

  private get closed(): boolean {
    return this.host.state === 'closed';
  }

  /**
   * Starts the stream after `resumeFrom`. `helloHead` is the head the hello script read once the bridge was delivering
   * this connection's patterns: when it is the resume point (a new recipient, `from: "head"`, or one that acked
   * everything), the store holds nothing wanted and everything after it reaches the buffer, so the first pass reads
   * nothing (unless something was missed since: `dirty`).
   */
  start(resumeFrom: number, helloHead: number): Promise<void> {
    this.lastSent = resumeFrom;
    return this.catchUp(helloHead);
  }

  offerLive(id: number, ch: string, wire: Buffer): void {
    if (id <= this.lastSent || !this.host.interest.takesOffer(ch, id)) return;
    const state = this.host.state;
    if (state === 'live') {
      if (this.out.buffered > this.deps.config.sendHighWater) {
        // A slow reader is not dropped: it is served from the store, paced by its socket.
        this.deps.stats.slowFallbacks++;
        void this.catchUp();
        return;
      }
      this.out.burst();
      this.out.writeFrames(wire);
      this.lastSent = id;
      this.sentLive++;
      this.deps.stats.deliveredLive++;
    } else if (state !== 'closed') this.hold(id, ch, wire);
  }

  /** A live message that cannot be delivered (not one valid JSON message): a gap in its place, in id order. */
  offerGap(id: number, ch: string): void {
    if (id <= this.lastSent || !this.host.interest.wants(ch, id)) return;
    this.deps.stats.gaps++;
    const gap = encodeGap(ch, id - 1, id, 'invalid');
    const state = this.host.state;
    if (state === 'live') {
      this.out.sendText(gap);
      this.lastSent = id;
    } else if (state !== 'closed') this.hold(id, ch, textFrame(Buffer.from(gap)));
  }

  /** The bridge lost its subscription: whatever was live must be re-read from the store. */
  liveLost(): void {
    const state = this.host.state;
    if (state === 'closed') return;
    this.dirty = true;
    if (state === 'live') void this.catchUp();
  }

  /** The connection closed: nothing more is held. */
  end(): void {
    this.buffer = undefined;
  }

  /** Buffers a live message until the catch-up reaches it; past the buffer's size, the next pass reads the store. */
  private hold(id: number, ch: string, wire: Buffer): void {
    const buffer = (this.buffer ??= []);
    const last = buffer[buffer.length - 1];
    if (last && id <= last.id) return;
    if (buffer.length >= this.deps.config.catchUpBuffer) {
      this.buffer = undefined;
      this.dirty = true;
      return;
    }
    buffer.push({ id, ch, wire });
  }

  /**
   * Replay then live, with no gap and no duplicate. Each pass first makes sure the bridge delivers live messages
   * (buffered from then on), then reads the head H and sends everything wanted up to H from the store. If no live
   * message could have been missed since H was read (no buffer overflow, no lost subscription), the buffer holds
   * everything after H: it is flushed in the same tick and the connection is live. Otherwise another pass follows.
   */
  private async catchUp(helloHead?: number): Promise<void> {
    if (this.host.state === 'catching-up') {
      // A pass is running: it runs another before going live.
      this.dirty = true;
      return;
    }
    this.host.setState('catching-up');
    try {
      let head = 0;
      do {
        await this.deps.bridge.ready();
        await this.out.writable();
        if (this.closed) return;
        if (helloHead === this.lastSent && !this.dirty) {
          head = helloHead;
          helloHead = undefined;
          continue;
        }
        helloHead = undefined;
        this.dirty = false;
        head = await this.pass();
        if (this.closed) return;
      } while (this.dirty);
      // No await from here on: nothing can arrive between the flush and going live.
      for (const m of this.buffer ?? []) {
        if (m.id > this.lastSent && this.host.interest.wants(m.ch, m.id)) {
          this.out.writeFrames(m.wire);
          this.lastSent = m.id;
        }
      }
      this.buffer = undefined;
      this.host.setState('live');
      this.out.sendText(encodeLive(Math.max(head, this.lastSent)));
    } catch (err) {
      this.host.fail(err);
    }
  }

  /** One pass over the store, from lastSent to the head it reads; returns that head. */
  private async pass(): Promise<number> {
    const { store, config, readAhead } = this.deps;
    const pass = new ReplayPass(store, this.host.interest, this.lastSent, config.replayPage, readAhead);
    try {
      await pass.start();
      while (await this.sendNextPage(pass)) await this.out.writable(readAhead.highWater(config.sendHighWater));
      return pass.head;
    } finally {
      pass.end();
    }
  }

  /** Sends the pass's next page; false once the pass is done (or the connection closed). The page is not held while the socket drains. */
  private async sendNextPage(pass: ReplayPass): Promise<boolean> {
    const page = await pass.nextPage();
    if (!page || this.closed) return false;
    this.sendPage(page);
    return true;
  }

  private sendPage(page: ReplayItem[]): void {
    const { stats, msgs } = this.deps;
    this.out.cork();
    // Runs of messages go out as one buffer of frames (most often a view of a shared read); a gap report ends a run.
    const run: Buffer[] = [];
    const flushRun = () => {
      if (run.length) this.out.writeFrames(this.opts.batch ? msgs.frames(run) : joinFrames(run));
      run.length = 0;
    };
    for (const item of page) {
      if ('gap' in item) {
        flushRun();
        stats.gaps++;
        this.out.sendText(encodeGap(item.ch, item.after, item.upTo, 'retention'));
      } else if (item.id <= this.lastSent) {
        // already sent live or by an earlier pass
      } else if (this.opts.checked && !this.deps.checks.valid(item.frame)) {
        // A client that asked (after it met a frame it could not parse) gets a message stored around the server's
        // checks as a gap; checking every replayed message for every client would cost ~1 µs each on every replay.
        flushRun();
        stats.gaps++;
        this.out.sendText(encodeGap(item.ch, item.id - 1, item.id, 'invalid'));
        this.lastSent = item.id;
      } else {
        run.push(item.frame);
        this.lastSent = item.id;
        this.sentReplayed++;
        stats.replayed++;
      }
    }
    flushRun();
    this.out.uncork();
  }
}
