// What the janitor asks of Redis: its lock, when each head was seen (ages to ids), trimming a channel, and counting what a trim would remove.
import type { Redis } from 'ioredis';
import type { Scripts } from './redis/commands';
import type { Keys } from './redis/keys';

export class Trimming {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly scripts: Scripts,
    private readonly maxLen: number,
  ) {}

  /** Trims one channel: ids <= ackFloor (-1: keep), ids <= ageCut by retention (-1: none), and the length cap. */
  trim(ch: string, ackFloor: number, ageCut: number): Promise<{ acked: number; retained: number }> {
    return this.scripts.trim({ ch, ackFloor, ageCut, maxLen: this.maxLen });
  }

  /** With several nodes only one trims per interval: true if `owner` holds the lock now (for `ms`, unless it had it). */
  async takeJanitorLock(owner: string, ms: number): Promise<boolean> {
    return (await this.redis.set(this.keys.janitorLock, owner, 'PX', ms, 'NX')) === 'OK';
  }

  /**
   * Remembers when the current head was first seen (ids <= it are at least as old as that moment), and forgets what
   * was recorded more than `keepMs` before `now`.
   */
  async recordHead(now: number, keepMs: number): Promise<void> {
    const { times, seq } = this.keys;
    const head = Number((await this.redis.get(seq)) ?? 0);
    await this.redis
      .multi()
      .zadd(times, 'NX', now, String(head))
      .zremrangebyscore(times, '-inf', now - keepMs)
      .exec();
  }

  /** The highest head recorded before `time` (ms): every id up to it is older than that. -1: none recorded. */
  async headBefore(time: number): Promise<number> {
    const old = await this.redis.zrevrangebyscore(this.keys.times, `(${time}`, '-inf', 'LIMIT', 0, 1);
    return old[0] === undefined ? -1 : Number(old[0]);
  }

  /**
   * What `trim(ch, ackFloor, ageCut)` would remove before the length cap, removing nothing: the messages stored, those
   * at or below the floor, and those above it up to the age cut.
   */
  async countTrimmable(ch: string, ackFloor: number, ageCut: number): Promise<{ stored: number; byAck: number; byAge: number }> {
    const key = this.keys.channel(ch);
    const [stored, byAck, byAge] = await Promise.all([
      this.redis.zcard(key),
      ackFloor < 0 ? 0 : this.redis.zcount(key, '-inf', ackFloor),
      ageCut < 0 ? 0 : this.redis.zcount(key, `(${Math.max(ackFloor, 0)}`, ageCut),
    ]);
    return { stored, byAck, byAge };
  }
}
