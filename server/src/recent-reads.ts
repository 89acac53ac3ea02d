// Replay reads shared while recent: a reconnect storm resumes many clients from one point, and they ask Redis the same.
/** how long a read is reused */
const REUSE_MS = 2000;
/** frames (by the reads' limits) held at most: past it, reads are not kept */
const MAX_FRAMES = 32_000;

interface Entry<T> {
  at: number;
  limit: number;
  chunk: Promise<T>;
}

/**
 * A read of ids after < id <= upTo never goes stale: every such id was stored before upTo was read
 * (publishing is one script), and only trimming removes one — a trimmed message delivered instead of
 * reported as a gap harms no one. A new epoch (a lost log, ids reused) must `clear()`.
 */
export class RecentReads<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private frames = 0;
  /** sweeps when no read comes to do it, so frames are not held past their time */
  private sweeper: NodeJS.Timeout | undefined;

  read(ch: string, after: number, upTo: number, limit: number, fetch: () => Promise<T>): Promise<T> {
    const now = performance.now();
    this.sweep(now);
    const key = `${after} ${upTo} ${limit} ${ch}`;
    const hit = this.entries.get(key);
    if (hit) return hit.chunk;
    const chunk = fetch();
    if (this.frames + limit <= MAX_FRAMES) {
      const entry = { at: now, limit, chunk };
      this.entries.set(key, entry);
      this.frames += limit;
      this.schedule();
      // A failed read is not shared with later ones.
      chunk.catch(() => {
        if (this.entries.get(key) === entry) this.drop(key, entry);
      });
    }
    return chunk;
  }

  /** Drops the expired: insertion order is age order, so they are at the front. */
  private sweep(now: number): void {
    for (const [key, e] of this.entries) {
      if (now - e.at < REUSE_MS) break;
      this.drop(key, e);
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
    this.frames = 0;
  }

  private drop(key: string, e: Entry<T>): void {
    this.entries.delete(key);
    this.frames -= e.limit;
  }
}
