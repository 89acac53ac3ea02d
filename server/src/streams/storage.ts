// The Durable Streams layout in Redis (includes/ds.lua), reached through the Store: the ds* scripts' typed callers.
import type { Redis } from 'ioredis';
import type { Scripts } from '../redis/commands';
import type { Keys } from '../redis/keys';
import type { AppendResult, CreateResult, Producer, ReadResult, StreamConfig } from './types';

export type * from './types';

export class Streams {
  readonly #redis: Redis;

  constructor(
    private readonly scripts: Scripts,
    redis: Redis,
    private readonly keys: Keys,
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

  /** Appends `entries` (none: a close-only request) with every check at once (dsappend-1.lua). */
  append(path: string, a: { ct: string; close: boolean; seq?: string; producer?: Producer; entries: Buffer[] }): Promise<AppendResult> {
    return this.scripts.dsappend({ path, ...a });
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
