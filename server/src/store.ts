// The one door to Redis for a namespace: publishing, positions, replay reads, trimming and the epoch, over typed script callers.
import { EventEmitter } from 'node:events';
import type { Json } from '@durable-pubsub/client-sdk/protocol';
import type { Redis } from 'ioredis';
import { EpochGuard, type RecoveredInfo } from './epoch';
import { type DpsError, toDpsError } from './errors';
import { type PublishDone, Publisher, type PublisherOptions, type PublishResult } from './publisher';
import { PubsubModes } from './pubsub-mode';
import { type Chunk, Reads } from './reads';
import { type Ack, type AckOutcome, type HelloResult, Scripts } from './redis/commands';
import { type Keys, keysFor } from './redis/keys';
import { Streams } from './streams/storage';
import { Subscriptions } from './subscriptions';
import { Trimming } from './trimming';
import { TurnBatch } from './turn-batch';

export type { RecoveredInfo } from './epoch';
export type { PublishDone, PublishResult } from './publisher';
export type { Chunk } from './reads';
export type { AckOutcome, HelloResult, RecoverOutcome } from './redis/commands';

/** acks per ack script call at most */
const ACK_BATCH = 500;

interface PendingAck extends Ack {
  resolve(outcome: AckOutcome): void;
  reject(err: unknown): void;
}

export interface StoreOptions extends PublisherOptions {
  namespace: string;
  /** told how long each Redis call took (metrics) */
  observe?: (op: string, seconds: number) => void;
}

export interface StoreEvents {
  /** the log's epoch is not the one this process knew: the log was lost and started anew */
  epoch: [epoch: string, previous: string];
  /** the Redis server under the log changed (restart, failover) and this process decided what that means */
  recovered: [info: RecoveredInfo];
}

export class Store extends EventEmitter<StoreEvents> {
  readonly keys: Keys;
  /** positions per (recipient, pattern set), off the connection hot path */
  readonly subscriptions: Subscriptions;
  /** Durable Streams (/v1/stream): their own layout beside the channels */
  readonly streams: Streams;
  readonly #redis: Redis;
  private readonly scripts: Scripts;
  private readonly guard: EpochGuard;
  private readonly publisher: Publisher;
  private readonly reads: Reads;
  private readonly trimming: Trimming;
  /** the namespace's pub/sub mode, stored in Redis (pubsub-mode.ts): how the scripts publish and the bridge subscribes */
  readonly pubsub: PubsubModes;
  private readonly acks = new TurnBatch<PendingAck>(ACK_BATCH, (batch) => void this.ackBatch(batch));

  constructor(
    redis: Redis,
    private readonly opts: StoreOptions,
  ) {
    super();
    this.#redis = redis;
    const keys = keysFor(opts.namespace);
    const scripts = new Scripts(redis, keys);
    const timed = this.timed.bind(this);
    this.keys = keys;
    this.scripts = scripts;
    this.subscriptions = new Subscriptions(redis, keys, scripts);
    this.guard = new EpochGuard(redis, keys, scripts, {
      changed: (epoch, previous) => {
        this.reads.forget();
        if (previous) this.emit('epoch', epoch, previous);
      },
      recovered: (info) => this.emit('recovered', info),
    });
    this.publisher = new Publisher({ scripts, guard: this.guard, timed, mapError: (err) => this.mapError(err) }, opts);
    this.reads = new Reads({ redis, keys, scripts, timed, fail: (err) => this.fail(err) });
    this.trimming = new Trimming(redis, keys, scripts, opts.retentionMaxLen);
    this.pubsub = new PubsubModes(redis, keys, scripts);
    this.streams = new Streams(scripts, redis, keys, {
      maxLen: opts.retentionMaxLen,
      ready: async () => {
        if (!this.guard.verified) await this.guard.verify();
      },
      stored: (epoch, count) => {
        this.guard.observe(epoch);
        if (opts.stats) opts.stats.published += count;
      },
    });
  }

  /** the epoch this process serves; empty until `init` */
  get epoch(): string {
    return this.guard.current;
  }

  /** The command connection is connected (an error while it is not means Redis is unreachable). */
  get redisReady(): boolean {
    return this.#redis.status === 'ready';
  }

  /** Creates the log's epoch if it has none, and learns it; converts positions written by an older layout. */
  async init(): Promise<string> {
    await this.recover();
    await this.clock();
    await this.subscriptions.migrate();
    return this.epoch;
  }

  /** Something happened that may have put another Redis server under the log. */
  suspect(): void {
    this.guard.suspect();
  }

  /** Checks which Redis server holds the log, changing the epoch if acknowledged writes may have been lost (epoch.ts). */
  recover(attempt = 0): Promise<void> {
    return this.guard.recover(attempt);
  }

  /** Reads Redis's clock (the command connection's heartbeat), which publish deadlines are set on. */
  clock(): Promise<void> {
    return this.publisher.clock();
  }

  /** Installs the `dps` Function library (FCALL dps_publish) on every primary; why not, if it could not. */
  installFunctions(): Promise<string | null> {
    return this.guard.installFunctions({
      maxLen: this.opts.retentionMaxLen,
      idemWindowSec: this.opts.idempotencyWindowSec,
    });
  }

  /** Marks the log as flushed by a clean shutdown of its Redis server (the managed one): its next start keeps the epoch. */
  markClean(): Promise<void> {
    return this.guard.markClean();
  }

  /** Re-checks the server and the epoch (the janitor calls this each pass), creating a new one if the log was lost. */
  async checkEpoch(): Promise<string> {
    await this.guard.verify();
    return this.epoch;
  }

  /** Times a Redis call for the metrics. */
  private timed<T>(op: string, p: Promise<T>): Promise<T> {
    const observe = this.opts.observe;
    if (!observe) return p;
    const t0 = performance.now();
    return p.finally(() => observe(op, (performance.now() - t0) / 1000));
  }

  /** A Redis failure as the error callers get (an unreachable Redis makes the next request verify the server first). */
  private mapError(err: unknown): DpsError {
    const e = toDpsError(err, this.redisReady);
    if (e.code === 'unavailable') this.guard.suspect();
    return e;
  }

  private fail(err: unknown): never {
    throw this.mapError(err);
  }

  /**
   * Stores one message. The publishes of one event-loop turn go to Redis together, in order, as one
   * script call: the same outcome per message as one call each, for a fraction of the round trips.
   */
  publish(ch: string, data: Json, key?: string): Promise<PublishResult> {
    return new Promise((resolve, reject) => {
      this.publishThen(ch, data, key, (err, id, dup) => (err ? reject(err) : resolve({ id, dup })));
    });
  }

  /** `publish` with a callback: the hot path of WS publishing, without a promise per message. */
  publishThen(ch: string, data: Json, key: string | undefined, done: PublishDone): void {
    this.publisher.add(ch, JSON.stringify(data), key, done);
  }

  /** Sends the publishes gathered so far now instead of at the end of the turn (a caller with its whole batch in hand). */
  flushPublishes(): void {
    this.publisher.flush();
  }

  /** Registers a connection of `recipient` with the pattern set `setKey` (patternSetKey) and decides where it resumes. */
  async hello(recipient: string, setKey: string, client: { epoch?: string; lastAckedId?: number; from?: string }): Promise<HelloResult> {
    try {
      if (!this.guard.verified) await this.guard.verify();
      const { epoch, lastAckedId, from } = client;
      const r = await this.timed('hello', this.scripts.hello({ recipient, setKey, epoch, lastAckedId, from }));
      this.guard.observe(r.epoch);
      return r;
    } catch (err) {
      this.fail(err);
    }
  }

  /**
   * Moves the position of (recipient, pattern set) forward: the stored position, or why not: its epoch is gone, or the
   * recipient or this set of it was forgotten. The acks of one event-loop turn go to Redis as one script call.
   */
  ack(recipient: string, setKey: string, id: number, epoch: string): Promise<AckOutcome> {
    return new Promise((resolve, reject) => this.acks.add({ recipient, setKey, id, epoch, resolve, reject }));
  }

  private async ackBatch(batch: PendingAck[]): Promise<void> {
    try {
      const outcomes = await this.timed('ack', this.scripts.ackmany(batch));
      for (const [i, a] of batch.entries()) a.resolve(outcomes[i] as AckOutcome);
    } catch (err) {
      const e = this.mapError(err);
      for (const a of batch) a.reject(e);
    }
  }

  head(): Promise<number> {
    return this.reads.head();
  }

  /** The head with the epoch it belongs to, read again if the epoch changed meanwhile (a new log's ids start over). */
  async headPosition(): Promise<{ epoch: string; id: number }> {
    for (;;) {
      const epoch = this.epoch;
      let id: number;
      try {
        id = await this.head();
      } catch (err) {
        this.fail(err);
      }
      if (this.epoch === epoch) return { epoch, id };
    }
  }

  /** The head, and the channels whose newest message is after `after` (the channel index). */
  changedSince(after: number): Promise<{ head: number; channels: string[] }> {
    return this.reads.changedSince(after);
  }

  /** Channels with their newest id and how many messages are stored. */
  channelStats(): Promise<{ channel: string; newestId: number; stored: number }[]> {
    return this.reads.channelStats();
  }

  /** All channels with their newest id. */
  channels(): Promise<Map<string, number>> {
    return this.reads.channels();
  }

  /** Up to `limit` messages of `ch` with after < id <= upTo, with the retention watermark, atomically (reads.ts). */
  readChunk(ch: string, after: number, upTo: number, limit: number): Promise<Chunk> {
    return this.reads.readChunk(ch, after, upTo, limit);
  }

  /** A page of one channel's retained messages, oldest first after `after` or newest first before `before` (reads.ts). */
  history(ch: string, page: { after?: number; before?: number; limit: number }): Promise<{ frames: Buffer[]; more: boolean }> {
    return this.reads.history(ch, page);
  }

  /** Trims one channel: ids <= ackFloor (-1: keep), ids <= ageCut by retention (-1: none), and the length cap. */
  trim(ch: string, ackFloor: number, ageCut: number): Promise<{ acked: number; retained: number }> {
    return this.trimming.trim(ch, ackFloor, ageCut);
  }

  /** With several nodes only one janitor trims: true if `owner` holds the lock now (for `ms`, unless it had it). */
  takeJanitorLock(owner: string, ms: number): Promise<boolean> {
    return this.trimming.takeJanitorLock(owner, ms);
  }

  /** Remembers when the current head was first seen (ages map to ids), forgetting records older than `keepMs`. */
  recordHead(now: number, keepMs: number): Promise<void> {
    return this.trimming.recordHead(now, keepMs);
  }

  /** The highest head recorded before `time` (ms), or -1: every id up to it is older than that. */
  headBefore(time: number): Promise<number> {
    return this.trimming.headBefore(time);
  }

  /** What trimming `ch` would remove before the length cap, removing nothing (trim --dry-run). */
  countTrimmable(ch: string, ackFloor: number, ageCut: number): Promise<{ stored: number; byAck: number; byAge: number }> {
    return this.trimming.countTrimmable(ch, ackFloor, ageCut);
  }
}
