// Replay reads shared while recent: a reconnect storm resumes many clients from one point, and they ask Redis the same.
/** how long a read is reused */
const REUSE_MS = 2000;
/** bytes of frames held at most: past it, reads are not kept */
const MAX_BYTES = 8 << 20;
/** bytes counted per frame for a read not yet answered */
const PENDING_FRAME_BYTES = 256;

/** What is shared: a read's ids, in order, and their frames. */
export interface Read {
  ids: number[];
  frames: Buffer[];
  /** ids [from, to) are the answer (default: all) */
  from?: number;
  to?: number;
}

interface Entry<T> {
  at: number;
  key: string;
  /** `${upTo} ${ch}`: the reads one can answer from another */
  range: string;
  after: number;
  limit: number;
  chunk: Promise<T>;
  /** the answer, once there */
  value?: T;
  bytes: number;
}

/**
 * A read of ids after < id <= upTo never goes stale: every such id was stored before upTo was read
 * (publishing is one script), and only trimming removes one — a trimmed message delivered instead of
 * reported as a gap harms no one. A new epoch (a lost log, ids reused) must `clear()`.
 *
 * A read answers a smaller one inside it, too: it holds every id of its channel in (after, its last id],
 * and all of them up to `upTo` when it was not full. So passes that read with different chunk sizes (they
 * started while more or fewer passes ran) still share their reads, and a storm costs one read, not one each.
 */
export class RecentReads<T extends Read> {
  private readonly entries = new Map<string, Entry<T>>();
  /** entries by `${upTo} ${ch}`, oldest first */
  private readonly ranges = new Map<string, Entry<T>[]>();
  private bytes = 0;
  /** sweeps when no read comes to do it, so frames are not held past their time */
  private sweeper: NodeJS.Timeout | undefined;

  read(ch: string, after: number, upTo: number, limit: number, fetch: () => Promise<T>): Promise<T> {
    const now = performance.now();
    this.sweep(now);
    const key = `${after} ${upTo} ${limit} ${ch}`;
    const hit = this.entries.get(key);
    if (hit) return hit.chunk;
    const range = `${upTo} ${ch}`;
    const covering = this.inside(this.ranges.get(range), after, limit);
    if (covering) return covering;
    const chunk = fetch();
    const bytes = limit * PENDING_FRAME_BYTES;
    if (this.bytes + bytes <= MAX_BYTES) {
      const entry: Entry<T> = { at: now, key, range, after, limit, chunk, bytes };
      this.entries.set(key, entry);
      let list = this.ranges.get(range);
      if (!list) this.ranges.set(range, (list = []));
      list.push(entry);
      this.bytes += bytes;
      this.schedule();
      chunk.then(
        (value) => {
          if (this.entries.get(key) !== entry) return;
          entry.value = value;
          let size = 0;
          for (const f of value.frames) size += f.length;
          this.bytes += size - entry.bytes;
          entry.bytes = size;
        },
        // A failed read is not shared with later ones.
        () => {
          if (this.entries.get(key) === entry) this.drop(entry);
        },
      );
    }
    return chunk;
  }

  /** `limit` ids after `after` from a read kept that holds them all, or undefined. */
  private inside(list: Entry<T>[] | undefined, after: number, limit: number): Promise<T> | undefined {
    if (!list) return undefined;
    for (const e of list) {
      if (e.after > after) continue;
      if (!e.value) {
        // Not answered yet: only its beginning is known to be what is asked.
        if (e.after === after && e.limit >= limit) return e.chunk.then((v) => slice(v, 0, limit));
        continue;
      }
      const ids = e.value.ids;
      const full = ids.length === e.limit;
      const last = ids.length ? (ids[ids.length - 1] as number) : e.after;
      if (full && after >= last) continue;
      let i = 0;
      let j = ids.length;
      while (i < j) {
        const mid = (i + j) >> 1;
        if ((ids[mid] as number) <= after) i = mid + 1;
        else j = mid;
      }
      // A full read ends where more may follow: it answers only if it holds `limit` ids after `after`.
      if (full && ids.length - i < limit) continue;
      return Promise.resolve(slice(e.value, i, i + limit));
    }
    return undefined;
  }

  /** Drops the expired: insertion order is age order, so they are at the front. */
  private sweep(now: number): void {
    for (const e of this.entries.values()) {
      if (now - e.at < REUSE_MS) break;
      this.drop(e);
    }
    if (this.entries.size) this.schedule();
  }

  private schedule(): void {
    this.sweeper ??= setTimeout(() => {
      this.sweeper = undefined;
      this.sweep(performance.now());
    }, REUSE_MS).unref();
  }

  clear(): void {
    this.entries.clear();
    this.ranges.clear();
    this.bytes = 0;
  }

  private drop(e: Entry<T>): void {
    this.entries.delete(e.key);
    this.bytes -= e.bytes;
    const list = this.ranges.get(e.range);
    if (!list) return;
    const at = list.indexOf(e);
    if (at >= 0) list.splice(at, 1);
    if (!list.length) this.ranges.delete(e.range);
  }
}

/** ids [from, to) of a read, with the rest of it (the watermark) as it was: a window, not a copy for each reader. */
function slice<T extends Read>(v: T, from: number, to: number): T {
  return from === 0 && to >= v.ids.length ? v : { ...v, from, to: Math.min(to, v.ids.length) };
}
