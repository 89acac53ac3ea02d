// All Redis access of one namespace: publish, recipients, replay reads, trimming, the epoch.
import { EventEmitter } from 'node:events';
import type { Json } from '@durable-pubsub/client-sdk/protocol';
import { nanoid } from 'nanoid';
import { DpsError, neverRan, toDpsError } from './errors';
import { RecentReads } from './recent-reads';
import { primaries } from './redis/connect';
import { type Keys, keysFor } from './redis/keys';
import { functionLibrary, type RecoverOutcome, type ScriptedRedis } from './redis/scripts';
import { Subscriptions } from './subscriptions';
import { TurnBatch } from './turn-batch';
import { textFrameViews } from './wire';

export interface PublishResult {
  id: number;
  dup: boolean;
}

/** Told the outcome of one publish: an error, or the stored id. Must not throw: the rest of its batch is settled after it. */
export type PublishDone = (err: unknown, id: number, dup: boolean) => void;

interface PendingPublish {
  ch: string;
  /** JSON text */
  data: string;
  key: string | undefined;
  done: PublishDone;
}

/** messages per publish script call at most */
const PUBLISH_BATCH = 500;
/** a publish's deadline on Redis's clock is this much before DPS_REDIS_TIMEOUT ends… */
const ANSWER_MARGIN_MS = 250;
/** …and its caller hears of a failure this long after it (the clock offset's error, timers firing late) */
const CLOCK_SLACK_MS = 150;
/** acks per ack script call at most */
const ACK_BATCH = 500;

interface PendingAck {
  recipient: string;
  setKey: string;
  id: number;
  epoch: string;
  resolve(stored: number): void;
  reject(err: unknown): void;
}

export interface HelloResult {
  epoch: string;
  head: number;
  resumeFrom: number;
  epochChanged: boolean;
  /** the stored position of the recipient's pattern set after this hello */
  acked: number;
}

export interface Chunk {
  /** highest id of the channel removed by retention (0: none) */
  watermark: number;
  ids: number[];
  /**
   * WebSocket text frames of the stored payloads (never decoded), framed once per read: views into one
   * buffer, back to back, so that every client replaying this read writes the same bytes (wire.ts).
   */
  frames: Buffer[];
}

export interface StoreOptions {
  namespace: string;
  retentionMaxLen: number;
  idempotencyWindowSec: number;
  /** a publish is answered within this many ms, whatever Redis does (DPS_REDIS_TIMEOUT; default 5000) */
  redisTimeoutMs?: number;
  /** told how long each Redis call took (metrics) */
  observe?: (op: string, seconds: number) => void;
  /** counts the messages this process stored (metrics) */
  stats?: { published: number };
}

export interface StoreEvents {
  /** the log's epoch is not the one this process knew: the log was lost and started anew */
  epoch: [epoch: string, previous: string];
  /** the Redis server under the log changed (restart, failover) and this process decided what that means */
  recovered: [info: { outcome: Exclude<RecoverOutcome, 'same'>; epoch: string; runId: string; head: number }];
}

/**
 * Whether every primary keeps every acknowledged write through a crash:
 * append-only with `appendfsync always`. Unknown (CONFIG refused) is no.
 */
export async function persistsEveryWrite(redis: ScriptedRedis): Promise<boolean> {
  try {
    const answers = await Promise.all(primaries(redis).map((r) => r.config('GET', 'append*') as Promise<string[]>));
    return answers.every((flat) => {
      const c = new Map<string, string>();
      for (let i = 0; i + 1 < flat.length; i += 2) c.set(flat[i] as string, flat[i + 1] as string);
      return c.get('appendonly') === 'yes' && c.get('appendfsync') === 'always';
    });
  } catch {
    return false;
  }
}

export class Store extends EventEmitter<StoreEvents> {
  readonly keys: Keys;
  /** the epoch this process serves; empty until `init` */
  epoch = '';
  /** positions per (recipient, pattern set), off the connection hot path */
  readonly subscriptions: Subscriptions;

  constructor(
    readonly redis: ScriptedRedis,
    private readonly opts: StoreOptions,
  ) {
    super();
    this.keys = keysFor(opts.namespace);
    this.subscriptions = new Subscriptions(redis, this.keys);
  }

  /**
   * False after anything that may mean another Redis server holds the log now
   * (a dropped connection, an unreachable error): publishes and hellos wait
   * for `recover` first, so no id is handed out twice in one epoch.
   */
  private verified = false;
  private readonly publishes = new TurnBatch<PendingPublish>(PUBLISH_BATCH, (batch) => void this.publishBatch(batch));
  private readonly acks = new TurnBatch<PendingAck>(ACK_BATCH, (batch) => void this.ackBatch(batch));
  private verifying: Promise<void> | null = null;
  private readonly recentReads = new RecentReads<Chunk>();
  /** Redis's clock minus ours (ms), from the clock reading with the shortest round trip among the last few */
  private clockOffset = 0;
  private clockSamples: { rtt: number; offset: number }[] = [];

  /** Creates the log's epoch if it has none, and learns it; converts positions written by an older layout. */
  async init(): Promise<string> {
    await this.recover();
    await this.clock();
    await this.subscriptions.migrate();
    return this.epoch;
  }

  /** Something happened that may have put another Redis server under the log. */
  suspect(): void {
    this.verified = false;
  }

  /**
   * Checks which Redis server holds the log. A different one (restart,
   * failover) keeps the epoch only if nothing acknowledged can have been lost:
   * a restart of a server that fsyncs every write, or after a clean shutdown.
   * Otherwise the epoch changes and every client is told (`epochChanged`).
   */
  async recover(attempt = 0): Promise<void> {
    const k = this.keys;
    let [epoch, outcome, runId, head] = await this.redis.dpsRecover(k.epoch, k.server, k.seq, nanoid(), 'check', '');
    if (outcome === 'restarted') {
      const keep = await persistsEveryWrite(this.redis);
      [epoch, outcome, runId, head] = await this.redis.dpsRecover(k.epoch, k.server, k.seq, nanoid(), keep ? 'keep' : 'reset', runId);
    }
    if (outcome === 'restarted') {
      // yet another server meanwhile (a failover during a restart): look again
      if (attempt < 3) return this.recover(attempt + 1);
      throw new DpsError('unavailable', 'the Redis server under the log keeps changing');
    }
    if (outcome !== 'same') this.emit('recovered', { outcome, epoch, runId, head });
    this.observeEpoch(epoch);
    this.verified = true;
  }

  /**
   * Reads Redis's clock on the namespace's node (the command connection's heartbeat): publish deadlines are set on
   * Redis's clock, so the offset to ours is kept, from the reading with the shortest round trip among the last 8
   * (its error is at most half that round trip).
   */
  async clock(): Promise<void> {
    const t0 = Date.now();
    const [sec, usec] = await this.redis.dpsClock(this.keys.epoch);
    const t1 = Date.now();
    this.clockSamples.push({ rtt: t1 - t0, offset: Number(sec) * 1000 + Number(usec) / 1000 - (t0 + t1) / 2 });
    if (this.clockSamples.length > 8) this.clockSamples.shift();
    this.clockOffset = this.clockSamples.reduce((best, s) => (s.rtt < best.rtt ? s : best)).offset;
  }

  /**
   * Installs the `dps` Function library (FCALL dps_publish) on every primary, with this server's settings for it. At
   * start and whenever the server under the log changed (a fresh Redis has no functions; they persist and replicate
   * otherwise). Says why not, rather than failing the server: Redis < 7, or Redis refusing writes right now.
   */
  async installFunctions(): Promise<string | null> {
    try {
      const lib = functionLibrary();
      await this.redis.hset(this.keys.config, 'maxLen', this.opts.retentionMaxLen, 'idemWindow', this.opts.idempotencyWindowSec);
      await Promise.all(primaries(this.redis).map((r) => r.call('FUNCTION', 'LOAD', 'REPLACE', lib)));
      return null;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  }

  /** Marks the log as flushed by a clean shutdown of its Redis server (the managed one): its next start keeps the epoch. */
  async markClean(): Promise<void> {
    await this.redis.set(this.keys.server, 'clean');
  }

  private verify(): Promise<void> {
    this.verifying ??= this.recover().finally(() => {
      this.verifying = null;
    });
    return this.verifying;
  }

  /** Learns the epoch a script saw; a different one means the log was lost. */
  private observeEpoch(epoch: string): void {
    if (epoch === this.epoch) return;
    const previous = this.epoch;
    this.epoch = epoch;
    // Ids of the old log mean nothing in the new one.
    this.recentReads.clear();
    if (previous) this.emit('epoch', epoch, previous);
  }

  /** Re-checks the server and the epoch (the janitor calls this each pass), creating a new one if the log was lost. */
  async checkEpoch(): Promise<string> {
    await this.verify();
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
    const e = toDpsError(err, this.redis.status === 'ready');
    if (e.code === 'unavailable') this.verified = false;
    return e;
  }

  private fail(err: unknown): never {
    throw this.mapError(err);
  }

  /**
   * Stores one message. The publishes of one event-loop turn go to Redis together, in order, as one
   * script call (at most PUBLISH_BATCH each): the same outcome per message as one call each, for a
   * fraction of the round trips and client work.
   */
  publish(ch: string, data: Json, key?: string): Promise<PublishResult> {
    return new Promise((resolve, reject) => {
      this.publishThen(ch, data, key, (err, id, dup) => (err ? reject(err) : resolve({ id, dup })));
    });
  }

  /** `publish` with a callback: the hot path of WS publishing, without a promise per message. */
  publishThen(ch: string, data: Json, key: string | undefined, done: PublishDone): void {
    this.publishes.add({ ch, data: JSON.stringify(data), key, done });
  }

  /** Sends the publishes gathered so far now instead of at the end of the turn (a caller with its whole batch in hand). */
  flushPublishes(): void {
    this.publishes.flush();
  }

  private async publishBatch(batch: PendingPublish[]): Promise<void> {
    const k = this.keys;
    // Each channel once (its key, name and JSON literal), then three arguments per message.
    const channelNo = new Map<string, number>();
    const chKeys: string[] = [];
    const chArgs: string[] = [];
    const idemKeys: string[] = [];
    const msgArgs: (string | number)[] = [];
    for (const m of batch) {
      let j = channelNo.get(m.ch);
      if (j === undefined) {
        j = chKeys.length;
        channelNo.set(m.ch, j);
        chKeys.push(k.channel(m.ch));
        chArgs.push(m.ch, JSON.stringify(m.ch));
      }
      if (m.key !== undefined) idemKeys.push(k.idem(m.key));
      msgArgs.push(j, m.data, m.key === undefined ? 0 : idemKeys.length);
    }
    // Answered within DPS_REDIS_TIMEOUT whatever Redis does. The script refuses to run past its deadline (on Redis's
    // clock), and a call that may have reached Redis is answered with an error only once that deadline has passed:
    // a publish answered `unavailable` can never be stored later (held by a stalled network, resent by a Cluster
    // client, or retransmitted by the kernel after its socket was destroyed).
    const started = Date.now();
    const window = (this.opts.redisTimeoutMs ?? 5000) - ANSWER_MARGIN_MS;
    const deadline = Math.round(started + this.clockOffset + window);
    let answered = false;
    let failure = new DpsError('unavailable', `Redis did not answer within ${window + ANSWER_MARGIN_MS} ms; nothing was stored`);
    const failAll = () => {
      if (answered) return;
      answered = true;
      for (const m of batch) m.done(failure, 0, false);
    };
    const guard = setTimeout(failAll, window + CLOCK_SLACK_MS);
    const keys = [k.seq, k.epoch, k.index, k.trimmed, ...chKeys, ...idemKeys];
    const args = [
      deadline,
      this.opts.retentionMaxLen,
      this.opts.idempotencyWindowSec,
      nanoid(),
      k.livePrefix,
      chKeys.length,
      ...chArgs,
      ...msgArgs,
    ];
    let reply: [string, number, ...number[]];
    let sent = false;
    try {
      if (!this.verified) await this.verify();
      sent = true;
      reply = await this.timed('publish', this.redis.dpsPublishmany(keys.length, ...keys, ...args));
    } catch (err) {
      failure = this.mapError(err);
      // Never sent, or refused by Redis: nothing was done, say so now. Otherwise the guard answers after the deadline.
      if (!sent || neverRan(err)) {
        clearTimeout(guard);
        failAll();
      }
      return;
    }
    clearTimeout(guard);
    if (answered) {
      // Stored before its deadline, but the answer came back too late: the caller was told `unavailable` (the outcome
      // of a failed publish is unknown; a retry with the same key is safe).
      this.observeEpoch(reply[0]);
      return;
    }
    answered = true;
    this.observeEpoch(reply[0]);
    // Stored messages have consecutive ids in batch order; the reply lists only the repeated keys.
    let next = reply[1];
    let p = 2;
    for (const [i, m] of batch.entries()) {
      if (reply[p] === i) {
        m.done(null, reply[p + 1] as number, true);
        p += 2;
      } else m.done(null, next++, false);
    }
    if (this.opts.stats) this.opts.stats.published += next - reply[1];
  }

  /** Registers a connection of `recipient` with the pattern set `setKey` (patternSetKey) and decides where it resumes. */
  async hello(recipient: string, setKey: string, client: { epoch?: string; lastAckedId?: number; from?: string }): Promise<HelloResult> {
    const k = this.keys;
    try {
      if (!this.verified) await this.verify();
      const [epoch, head, resumeFrom, changed, acked] = await this.timed(
        'hello',
        this.redis.dpsHello(
          k.epoch,
          k.seq,
          k.recipient(recipient),
          k.recipients,
          k.floors,
          k.subs,
          nanoid(),
          recipient,
          setKey,
          client.epoch ?? '',
          client.lastAckedId ?? '',
          client.from ?? 'head',
          k.psetPrefix,
        ),
      );
      this.observeEpoch(epoch);
      return { epoch, head, resumeFrom, epochChanged: changed === 1, acked };
    } catch (err) {
      this.fail(err);
    }
  }

  /**
   * Moves the position of (recipient, pattern set) forward: the stored position, or -1 when its epoch is gone,
   * -2 when the recipient or this set of it was forgotten. The acks of one event-loop turn go to Redis as one
   * script call.
   */
  ack(recipient: string, setKey: string, id: number, epoch: string): Promise<number> {
    return new Promise((resolve, reject) => this.acks.add({ recipient, setKey, id, epoch, resolve, reject }));
  }

  private async ackBatch(batch: PendingAck[]): Promise<void> {
    const k = this.keys;
    const keys = [k.epoch, k.recipients, k.floors, k.subs];
    const args: (string | number)[] = [k.psetPrefix];
    for (const a of batch) {
      keys.push(k.recipient(a.recipient));
      args.push(a.epoch, a.recipient, a.setKey, a.id);
    }
    try {
      const stored = await this.timed('ack', this.redis.dpsAckmany(keys.length, ...keys, ...args));
      for (const [i, a] of batch.entries()) a.resolve(stored[i] as number);
    } catch (err) {
      const e = this.mapError(err);
      for (const a of batch) a.reject(e);
    }
  }

  async head(): Promise<number> {
    return Number((await this.redis.get(this.keys.seq)) ?? 0);
  }

  /** The head, and the channels whose newest message is after `after` (the channel index). */
  async changedSince(after: number): Promise<{ head: number; channels: string[] }> {
    try {
      // GET first: every message <= head is in the index by the time the index is read.
      const [seq, chans] = await Promise.all([
        this.redis.get(this.keys.seq),
        this.redis.zrangebyscore(this.keys.index, `(${after}`, '+inf'),
      ]);
      return { head: Number(seq ?? 0), channels: chans };
    } catch (err) {
      this.fail(err);
    }
  }

  /** Channels with their newest id and how many messages are stored. */
  async channelStats(): Promise<{ channel: string; newestId: number; stored: number }[]> {
    const channels = await this.channels();
    const counts = await Promise.all([...channels.keys()].map((ch) => this.redis.zcard(this.keys.channel(ch))));
    return [...channels].map(([channel, newestId], i) => ({ channel, newestId, stored: counts[i] as number }));
  }

  /** All channels with their newest id. */
  async channels(): Promise<Map<string, number>> {
    const flat = await this.redis.zrangebyscore(this.keys.index, '-inf', '+inf', 'WITHSCORES');
    const out = new Map<string, number>();
    for (let i = 0; i < flat.length; i += 2) out.set(flat[i] as string, Number(flat[i + 1]));
    return out;
  }

  /**
   * Up to `limit` messages of `ch` with after < id <= upTo, with the retention watermark, atomically.
   * The same read asked again within a moment (clients resuming from one point) is answered once.
   */
  readChunk(ch: string, after: number, upTo: number, limit: number): Promise<Chunk> {
    return this.recentReads.read(ch, after, upTo, limit, () => this.readChunkNow(ch, after, upTo, limit));
  }

  private async readChunkNow(ch: string, after: number, upTo: number, limit: number): Promise<Chunk> {
    try {
      const reply = await this.timed('read', this.redis.dpsReadBuffer(this.keys.channel(ch), this.keys.trimmed, ch, after, upTo, limit));
      const ids: number[] = [];
      const payloads: Buffer[] = [];
      for (let i = 1; i < reply.length; i += 2) {
        payloads.push(reply[i] as Buffer);
        ids.push(Number((reply[i + 1] as Buffer).toString('latin1')));
      }
      return { watermark: Number(reply[0]), ids, frames: textFrameViews(payloads) };
    } catch (err) {
      this.fail(err);
    }
  }

  /** Trims one channel: ids <= ackFloor (-1: keep), ids <= ageCut by retention (-1: none), and the length cap. */
  async trim(ch: string, ackFloor: number, ageCut: number): Promise<{ acked: number; retained: number }> {
    const k = this.keys;
    const [acked, retained] = await this.redis.dpsTrim(k.channel(ch), k.trimmed, k.index, ch, ackFloor, ageCut, this.opts.retentionMaxLen);
    return { acked, retained };
  }
}
