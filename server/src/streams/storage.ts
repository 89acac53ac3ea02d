// The Durable Streams layout in Redis (includes/ds.lua), reached through the Store: the ds* scripts' typed callers.
import type { Redis } from 'ioredis';
import type { Scripts } from '../redis/commands';
import type { Keys } from '../redis/keys';
import type { AppendResult, CreateResult, Producer, ReadResult, StreamConfig } from './types';

export type * from './types';

/** What an append that reaches a channel needs of the channel log (the Store's epoch guard and settings). */
export interface StreamLog {
  /** max messages kept per channel */
  maxLen: number;
  /** resolves once the Redis server under the log is checked (EpochGuard.verify when not verified) */
  ready(): Promise<void>;
  /** `count` messages were stored on a channel in epoch `epoch` */
  stored(epoch: string, count: number): void;
}

export class Streams {
  readonly #redis: Redis;

  constructor(
    private readonly scripts: Scripts,
    redis: Redis,
    private readonly keys: Keys,
    private readonly log: StreamLog,
  ) {
    this.#redis = redis;
  }

  /** Every stream's path (soft-deleted ones too): what a subscription's pattern is matched against. */
  paths(): Promise<string[]> {
    return this.#redis.smembers(`${this.keys.streamPrefix}all`);
  }

  /** The ids of the subscriptions (§6), and each one's state as JSON (subscriptions.ts owns its shape). */
  subscriptionIds(): Promise<string[]> {
    return this.#redis.smembers(`${this.keys.streamPrefix}subs`);
  }

  subscription(id: string): Promise<string | null> {
    return this.#redis.get(`${this.keys.streamPrefix}sub:${id}`);
  }

  async saveSubscription(id: string, state: string | null): Promise<void> {
    const k = `${this.keys.streamPrefix}sub:${id}`;
    if (state === null) await this.#redis.multi().del(k).srem(`${this.keys.streamPrefix}subs`, id).exec();
    else await this.#redis.multi().set(k, state).sadd(`${this.keys.streamPrefix}subs`, id).exec();
  }

  /** The webhook signing key (PKCS#8 PEM) every node shares: the first one offered is kept. */
  async signingKey(offer: string): Promise<string> {
    const k = `${this.keys.streamPrefix}signing`;
    await this.#redis.set(k, offer, 'NX');
    return (await this.#redis.get(k)) ?? offer;
  }

  /** Creates a stream or a fork of one (dscreate-1.lua); `entries` is the initial data (JSON streams: one message each). */
  create(path: string, config: StreamConfig, entries: Buffer[]): Promise<CreateResult> {
    return this.scripts.dscreate({ path, config, entries });
  }

  /**
   * Appends `entries` (none: a close-only request) with every check at once (dsappend-7.lua); a JSON stream whose path
   * is a channel stores them on that channel in the same call (as a publish would: ids, live frames).
   */
  async append(
    path: string,
    a: { ct: string; close: boolean; seq?: string; producer?: Producer; entries: Buffer[] },
  ): Promise<AppendResult> {
    // As before a publish: after anything that may have put another Redis server under the log, check it first.
    if (a.entries.length) await this.log.ready();
    const r = await this.scripts.dsappend({ path, ...a, maxLen: this.log.maxLen });
    if (r.channel) this.log.stored(r.channel.epoch, a.entries.length);
    return r;
  }

  /** The meta, and entries from `from` on up to about `maxBytes` (0: the meta alone) (dsread-1.lua). */
  read(path: string, from: number | 'now', maxBytes: number, touch: boolean): Promise<ReadResult> {
    return this.scripts.dsread({ path, from, maxBytes, touch });
  }

  /** Deletes a stream, or soft-deletes it while forks read it (dsdelete-1.lua). */
  delete(path: string): Promise<'deleted' | 'missing' | 'gone'> {
    return this.scripts.dsdelete({ path });
  }
}
