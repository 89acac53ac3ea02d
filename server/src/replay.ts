// One catch-up pass: every wanted message with from < id <= head, read from the store in id order, in pages.
import type { Store } from './store';

export interface ReplayMsg {
  id: number;
  ch: string;
  frame: string;
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
  /** gaps are not reported for ids at or below this (the recipient acked them) */
  ackFloor(): number;
}

interface Cursor {
  ch: string;
  floor: number;
  /** last id read from this channel */
  last: number;
  ids: number[];
  frames: string[];
  pos: number;
  /** more may exist up to head: the last chunk was full */
  more: boolean;
  next: Promise<void> | null;
  /** retention watermark seen by the last read, and the channel's read position before it */
  watermark: number;
  watermarkAfter: number;
  /** gaps reported so far cover ids up to this */
  gapUpTo: number;
}

/**
 * A k-way merge by id over the channels that changed after `from`, reading each
 * channel in chunks (prefetching the next chunk while the current one is
 * sent). Memory: two chunks per channel, and a channel's chunk shrinks as the
 * channel count grows. Every read is bounded by the head read at the start, so
 * a message published meanwhile can never slip in out of order: the live
 * buffer covers everything after the head.
 */
export class ReplayPass {
  head = 0;
  private cursors: Cursor[] = [];
  private chunk = 0;

  constructor(
    private readonly store: Store,
    private readonly filter: ReplayFilter,
    readonly from: number,
    private readonly pageSize: number,
  ) {}

  async start(): Promise<void> {
    const { head, channels } = await this.store.changedSince(this.from);
    this.head = head;
    const wanted: Cursor[] = [];
    for (const ch of channels) {
      const floor = this.filter.channelFloor(ch);
      if (floor === null) continue;
      wanted.push({
        ch,
        floor,
        last: this.from,
        ids: [],
        frames: [],
        pos: 0,
        more: true,
        next: null,
        watermark: 0,
        watermarkAfter: 0,
        gapUpTo: 0,
      });
    }
    this.chunk = Math.max(16, Math.min(this.pageSize, Math.ceil((this.pageSize * 4) / Math.max(1, wanted.length))));
    this.cursors = wanted;
    await Promise.all(wanted.map((c) => this.fetch(c)));
  }

  private fetch(c: Cursor): Promise<void> {
    const before = c.last;
    return this.store.readChunk(c.ch, before, this.head, this.chunk).then((chunk) => {
      c.ids = chunk.ids;
      c.frames = chunk.frames;
      c.pos = 0;
      c.more = chunk.ids.length === this.chunk;
      if (chunk.ids.length) c.last = chunk.ids[chunk.ids.length - 1] as number;
      if (chunk.watermark > before) {
        c.watermark = chunk.watermark;
        c.watermarkAfter = before;
      }
    });
  }

  /** The next page of items in id order, or null when the pass has reached its head. */
  async nextPage(): Promise<ReplayItem[] | null> {
    const out: ReplayItem[] = [];
    const ackFloor = this.filter.ackFloor();
    while (out.length < this.pageSize) {
      // Pick the channel with the smallest next id; refill a drained channel first.
      let best: Cursor | null = null;
      for (let i = 0; i < this.cursors.length; i++) {
        const c = this.cursors[i] as Cursor;
        if (c.watermark > c.gapUpTo) {
          // Ids up to the head only: later ones are this pass's live buffer's business.
          const upTo = Math.min(c.watermark, this.head);
          const after = Math.max(c.watermarkAfter, c.gapUpTo, c.floor, ackFloor);
          c.gapUpTo = c.watermark;
          if (upTo > after) out.push({ gap: true, ch: c.ch, after, upTo });
        }
        if (c.pos >= c.ids.length) {
          if (!c.more) {
            this.cursors.splice(i--, 1);
            continue;
          }
          if (out.length) return out; // send what we have before waiting on Redis
          c.next ??= this.fetch(c);
          await c.next;
          c.next = null;
          i--;
          continue;
        }
        if (!best || (c.ids[c.pos] as number) < (best.ids[best.pos] as number)) best = c;
      }
      if (!best) return out.length ? out : null;
      const id = best.ids[best.pos] as number;
      const frame = best.frames[best.pos] as string;
      best.pos++;
      if (best.pos === best.ids.length && best.more && !best.next) best.next = this.fetch(best);
      if (id > best.floor) out.push({ id, ch: best.ch, frame });
    }
    return out;
  }
}
