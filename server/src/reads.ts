// Reads of the log: the head, the channels and what changed in them, replay chunks (the same chunk asked again within a moment is read once).
import type { Redis } from 'ioredis';
import { RecentReads } from './recent-reads';
import type { Scripts } from './redis/commands';
import type { Keys } from './redis/keys';
import { textFrameViews } from './wire';

export interface Chunk {
  /** highest id of the channel removed by retention (0: none) */
  watermark: number;
  ids: number[];
  /**
   * WebSocket text frames of the stored payloads (never decoded), framed once per read: views into one
   * buffer, back to back, so that every client replaying this read writes the same bytes (wire.ts).
   */
  frames: Buffer[];
  /** ids [from, to) are this chunk's (default: all): a window of a read kept, shared with other passes (recent-reads.ts) */
  from?: number;
  to?: number;
}

/** What reads share with the rest of the store. */
export interface ReadsDeps {
  redis: Redis;
  keys: Keys;
  scripts: Scripts;
  timed<T>(op: string, p: Promise<T>): Promise<T>;
  /** throws a Redis failure as callers get it */
  fail(err: unknown): never;
}

export class Reads {
  private readonly recent = new RecentReads<Chunk>();
  /** changedSince reads of this tick, not sent yet, by their `after` */
  private readonly asked = new Map<number, Promise<{ head: number; channels: string[] }>>();

  constructor(private readonly d: ReadsDeps) {}

  /** Ids of an old log mean nothing in a new one: a new epoch drops the reads kept. */
  forget(): void {
    this.recent.clear();
  }

  async head(): Promise<number> {
    return Number((await this.d.redis.get(this.d.keys.seq)) ?? 0);
  }

  /**
   * The head, and the channels whose newest message is after `after` (the channel index). Asked again from the same
   * point in the same tick (a reconnect storm: the hellos answered by one reply from Redis all resume from the last
   * broadcast), it is read once: the read goes out on the next tick, so it is sent after every caller that shares it
   * asked. A caller's head must be read after it registered for live messages (handover.ts), never before.
   */
  changedSince(after: number): Promise<{ head: number; channels: string[] }> {
    let read = this.asked.get(after);
    if (!read) {
      read = new Promise((resolve) =>
        process.nextTick(() => {
          this.asked.delete(after);
          resolve(this.changedSinceNow(after));
        }),
      );
      this.asked.set(after, read);
    }
    return read;
  }

  private async changedSinceNow(after: number): Promise<{ head: number; channels: string[] }> {
    const { redis, keys } = this.d;
    try {
      // GET first: every message <= head is in the index by the time the index is read.
      const [seq, chans] = await Promise.all([redis.get(keys.seq), redis.zrangebyscore(keys.index, `(${after}`, '+inf')]);
      return { head: Number(seq ?? 0), channels: chans };
    } catch (err) {
      this.d.fail(err);
    }
  }

  /** Channels with their newest id and how many messages are stored. */
  async channelStats(): Promise<{ channel: string; newestId: number; stored: number }[]> {
    const channels = await this.channels();
    const counts = await Promise.all([...channels.keys()].map((ch) => this.d.redis.zcard(this.d.keys.channel(ch))));
    return [...channels].map(([channel, newestId], i) => ({ channel, newestId, stored: counts[i] as number }));
  }

  /** All channels with their newest id. */
  async channels(): Promise<Map<string, number>> {
    const flat = await this.d.redis.zrangebyscore(this.d.keys.index, '-inf', '+inf', 'WITHSCORES');
    const out = new Map<string, number>();
    for (let i = 0; i < flat.length; i += 2) out.set(flat[i] as string, Number(flat[i + 1]));
    return out;
  }

  /**
   * Up to `limit` messages of `ch` with after < id <= upTo, with the retention watermark, atomically.
   * The same read asked again within a moment (clients resuming from one point) is answered once.
   */
  readChunk(ch: string, after: number, upTo: number, limit: number): Promise<Chunk> {
    return this.recent.read(ch, after, upTo, limit, () => this.readNow(ch, after, upTo, limit));
  }

  private async readNow(ch: string, after: number, upTo: number, limit: number): Promise<Chunk> {
    try {
      const r = await this.d.timed('read', this.d.scripts.read({ ch, after, upTo, limit }));
      return { watermark: r.watermark, ids: r.ids, frames: textFrameViews(r.payloads) };
    } catch (err) {
      this.d.fail(err);
    }
  }

  /**
   * A page of one channel's retained messages (the stored frames' JSON): oldest first after `after`, else newest
   * first before `before` (no bound: from the newest). `more`: the page is full and more lie beyond it.
   */
  async history(ch: string, page: { after?: number; before?: number; limit: number }): Promise<{ frames: Buffer[]; more: boolean }> {
    const key = this.d.keys.channel(ch);
    const n = page.limit + 1;
    try {
      const frames =
        page.after !== undefined
          ? await this.d.redis.zrangebyscoreBuffer(key, `(${page.after}`, '+inf', 'LIMIT', 0, n)
          : await this.d.redis.zrevrangebyscoreBuffer(key, page.before === undefined ? '+inf' : `(${page.before}`, '-inf', 'LIMIT', 0, n);
      return { frames: frames.slice(0, page.limit), more: frames.length > page.limit };
    } catch (err) {
      this.d.fail(err);
    }
  }
}
