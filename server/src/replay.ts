// One catch-up pass: every wanted message with from < id <= head, read from the store in id order, in pages.
import type { Chunk } from './store';

/** What a pass reads (the Store). */
export interface ReplayStore {
  changedSince(after: number): Promise<{ head: number; channels: string[] }>;
  readChunk(ch: string, after: number, upTo: number, limit: number): Promise<Chunk>;
}

export interface ReplayMsg {
  id: number;
  ch: string;
  /** the stored message as a WebSocket frame (a view into its read's buffer: Chunk.frames) */
  frame: Buffer;
}
export interface ReplayGap {
  gap: true;
  ch: string;
  after: number;
  upTo: number;
}
export type ReplayItem = ReplayMsg | ReplayGap;

export interface ReplayFilter {
  /** ids of `ch` above this are wanted; null: the channel is not wanted at all */
  channelFloor(ch: string): number | null;
}

interface Cursor {
  ch: string;
  floor: number;
  ids: number[];
  frames: Buffer[];
  /** the chunk is ids [start, end) of its read (a window of a read shared with other passes) */
  start: number;
  end: number;
  pos: number;
  /** highest id read from the store so far (consumed or not) */
  readTo: number;
  /** more may exist up to head: the last chunk was full */
  more: boolean;
  /** the next chunk, requested ahead of need */
  next: Promise<Chunk> | null;
  /** read position the pending request started from (for gap reports) */
  nextFrom: number;
  /** gaps reported so far cover ids up to this */
  gapUpTo: number;
}

const nextId = (c: Cursor) => c.ids[c.pos] as number;

/**
 * What all catch-ups of a server may hold at once, in bytes, shared by the passes running now: what they read ahead
 * of sending, and what waits in their sockets' send buffers. A pass's chunks and its send buffer's high-water mark
 * shrink while many run (100 readers of a 100,000-message backlog, each with 64,000 / 100 frames ahead and a 1 MiB
 * send buffer, took the server's RSS up by ~270 MB).
 */
export class ReadAhead {
  /** passes running now */
  active = 0;
  /** bytes per stored frame, a running average of the chunks read (a guess until the first) */
  frameBytes = 256;
  constructor(
    /** read ahead by all passes together */
    readonly budget = 8 << 20,
    /** waiting in the send buffers of all catching-up connections together */
    readonly sendBudget = 32 << 20,
    /** a catching-up connection's high-water mark is never below this (a page must fit, or replay crawls) */
    readonly minHighWater = 64 << 10,
  ) {}

  /** Frames a new pass may read ahead over all its channels. */
  frames(): number {
    return this.budget / Math.max(1, this.active) / this.frameBytes;
  }

  /** The high-water mark of a catching-up connection's send buffer: its share of the send budget, up to `max`. */
  highWater(max: number): number {
    return Math.min(max, Math.max(this.minHighWater, this.sendBudget / Math.max(1, this.active)));
  }

  /** A chunk of `frames` frames, `bytes` long, was read. */
  observe(bytes: number, frames: number): void {
    if (frames) this.frameBytes += (bytes / frames - this.frameBytes) / 8;
  }
}

/**
 * A k-way merge by id (binary heap) over the channels that changed after
 * `from`, reading each channel in chunks and asking for a channel's next chunk
 * once half of the current one is sent. Memory: at most two chunks per
 * channel; a channel's chunk shrinks as the channel count grows. Every read is
 * bounded by the head read at the start, so a message published meanwhile
 * never slips in out of order: the live buffer covers everything after it.
 */
export class ReplayPass {
  head = 0;
  private heap: Cursor[] = [];
  /** cursors whose chunk is used up while more is in the store: refilled before the next pick */
  private drained: Cursor[] = [];
  private chunk = 0;
  private pendingGaps: ReplayGap[] = [];
  private counted = false;

  constructor(
    private readonly store: ReplayStore,
    private readonly filter: ReplayFilter,
    readonly from: number,
    private readonly pageSize: number,
    private readonly readAhead: ReadAhead,
  ) {}

  async start(): Promise<void> {
    const { head, channels } = await this.store.changedSince(this.from);
    this.head = head;
    const cursors: Cursor[] = [];
    for (const ch of channels) {
      const floor = this.filter.channelFloor(ch);
      if (floor === null) continue;
      cursors.push({
        ch,
        floor,
        ids: [],
        frames: [],
        start: 0,
        end: 0,
        pos: 0,
        readTo: this.from,
        more: true,
        next: null,
        nextFrom: this.from,
        gapUpTo: 0,
      });
    }
    this.readAhead.active++;
    this.counted = true;
    const perChannel = Math.min(this.pageSize * 4, this.readAhead.frames()) / Math.max(1, cursors.length);
    // A power of two, so that passes started from one point at about the same time ask the same reads (shared).
    this.chunk = Math.max(16, Math.min(this.pageSize, 2 ** Math.round(Math.log2(Math.max(1, perChannel)))));
    this.drained = cursors;
  }

  /** Ends the pass's share of the read-ahead budget (called once it is done or abandoned). */
  end(): void {
    if (this.counted) this.readAhead.active--;
    this.counted = false;
  }

  private request(c: Cursor): void {
    c.nextFrom = c.readTo;
    c.next = this.store.readChunk(c.ch, c.readTo, this.head, this.chunk);
  }

  /** Installs the requested chunk; notes a retention gap if the channel lost ids since the last read. */
  private async refill(c: Cursor): Promise<void> {
    if (!c.next) this.request(c);
    const chunk = await (c.next as Promise<Chunk>);
    c.next = null;
    c.ids = chunk.ids;
    c.frames = chunk.frames;
    c.start = c.pos = chunk.from ?? 0;
    c.end = chunk.to ?? chunk.ids.length;
    c.more = c.end - c.start === this.chunk;
    let bytes = 0;
    for (let i = c.start; i < c.end; i++) bytes += (chunk.frames[i] as Buffer).length;
    this.readAhead.observe(bytes, c.end - c.start);
    if (c.end > c.start) c.readTo = chunk.ids[c.end - 1] as number;
    if (chunk.watermark > Math.max(c.gapUpTo, c.nextFrom)) {
      // Ids up to the head only: later ones are this pass's live buffer's business. Everything after the pass's
      // start was wanted by this connection, whoever acked it since (another device of the same set, a set that
      // was forgotten and came back): what is gone is reported, never skipped.
      const upTo = Math.min(chunk.watermark, this.head);
      const after = Math.max(c.nextFrom, c.gapUpTo, c.floor);
      c.gapUpTo = chunk.watermark;
      if (upTo > after) this.pendingGaps.push({ gap: true, ch: c.ch, after, upTo });
    }
  }

  /** The next page of items in id order, or null when the pass has reached its head. */
  async nextPage(): Promise<ReplayItem[] | null> {
    const out: ReplayItem[] = [];
    while (out.length < this.pageSize) {
      if (this.drained.length) {
        if (out.length) break; // send what we have while the refills are on their way
        const drained = this.drained;
        this.drained = [];
        for (const c of drained) if (!c.next) this.request(c);
        await Promise.all(drained.map((c) => this.refill(c)));
        for (const c of drained) if (c.pos < c.end) this.push(c);
        out.push(...this.pendingGaps);
        this.pendingGaps = [];
        continue;
      }
      const c = this.heap[0];
      if (!c) break;
      const id = nextId(c);
      if (id > c.floor) out.push({ id, ch: c.ch, frame: c.frames[c.pos] as Buffer });
      c.pos++;
      if (c.more && !c.next && (c.pos - c.start) * 2 >= c.end - c.start) this.request(c);
      if (c.pos < c.end) this.siftDown(0);
      else {
        this.pop();
        if (c.more) this.drained.push(c);
      }
    }
    return out.length ? out : null;
  }

  private push(c: Cursor): void {
    const h = this.heap;
    h.push(c);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (nextId(h[parent] as Cursor) <= nextId(c)) break;
      h[i] = h[parent] as Cursor;
      i = parent;
    }
    h[i] = c;
  }

  private pop(): void {
    const last = this.heap.pop() as Cursor;
    if (this.heap.length) {
      this.heap[0] = last;
      this.siftDown(0);
    }
  }

  private siftDown(i: number): void {
    const h = this.heap;
    const c = h[i] as Cursor;
    const key = nextId(c);
    for (;;) {
      let child = 2 * i + 1;
      if (child >= h.length) break;
      if (child + 1 < h.length && nextId(h[child + 1] as Cursor) < nextId(h[child] as Cursor)) child++;
      if (nextId(h[child] as Cursor) >= key) break;
      h[i] = h[child] as Cursor;
      i = child;
    }
    h[i] = c;
  }
}
