// Publishing: the publishes of one event-loop turn as one script call (and, while a call is in flight, of every turn
// until it returns: group commit), each answered within DPS_REDIS_TIMEOUT, by a deadline on Redis's clock.
import type { EpochGuard } from './epoch';
import { DpsError, neverRan } from './errors';
import type { Outgoing, PublishReply, Scripts } from './redis/commands';

export interface PublishResult {
  id: number;
  dup: boolean;
}

/** Told the outcome of one publish: an error, or the stored id. Must not throw: the rest of its batch is settled after it. */
export type PublishDone = (err: unknown, id: number, dup: boolean) => void;

interface PendingPublish extends Outgoing {
  done: PublishDone;
}

/** Publishes waiting for their script call, and when the first of them came (ms, Date.now()). */
interface Queue {
  items: PendingPublish[];
  since: number;
}

/** messages per publish script call at most */
export const PUBLISH_BATCH = 500;
/**
 * Script calls in flight at once while Redis answers quickly. A call costs this process ~100 µs of CPU whatever its
 * size (a write, a read and a wake-up of the event loop each), so under load the publishes that arrive while one is in
 * flight wait for it and go together in the next: fewer, larger calls (group commit). An idle server sends at once.
 */
const IN_FLIGHT = 1;
/** …but a batch waits for the call in flight at most this long (a slow Redis, fsync: calls are pipelined again) */
const HOLD_MS = 2;
/** a publish's deadline on Redis's clock is this much before DPS_REDIS_TIMEOUT ends… */
const ANSWER_MARGIN_MS = 250;
/** …and its caller hears of a failure this long after it (the clock offset's error, timers firing late) */
const CLOCK_SLACK_MS = 150;

export interface PublisherOptions {
  retentionMaxLen: number;
  idempotencyWindowSec: number;
  /** a publish is answered within this many ms, whatever Redis does (DPS_REDIS_TIMEOUT; default 5000) */
  redisTimeoutMs?: number;
  /** counts the messages this process stored (metrics) */
  stats?: { published: number };
}

/** What the publisher shares with the rest of the store. */
export interface PublisherDeps {
  scripts: Scripts;
  guard: EpochGuard;
  timed<T>(op: string, p: Promise<T>): Promise<T>;
  /** a Redis failure as callers get it (an unreachable Redis makes the next request verify the server first) */
  mapError(err: unknown): DpsError;
}

export class Publisher {
  private queue: Queue = { items: [], since: 0 };
  /** script calls sent and not answered */
  private inFlight = 0;
  /** the end of this turn is to send the queue (or to hold it) */
  private scheduled = false;
  private holdTimer: NodeJS.Timeout | undefined;
  /** Redis's clock minus ours (ms), from the clock reading with the shortest round trip among the last few */
  private clockOffset = 0;
  private clockSamples: { rtt: number; offset: number }[] = [];

  constructor(
    private readonly d: PublisherDeps,
    private readonly opts: PublisherOptions,
  ) {}

  /** Queues one message (data: JSON text) for this turn's batch. */
  add(ch: string, data: string, key: string | undefined, done: PublishDone): void {
    const q = this.queue;
    if (q.items.length === 0) q.since = Date.now();
    q.items.push({ ch, data, key, done });
    if (q.items.length >= PUBLISH_BATCH) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.endOfTurn);
    }
  }

  /** Sends the publishes gathered so far now, as one call, whatever is in flight (a caller with its whole batch in hand). */
  flush(): void {
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    const q = this.queue;
    if (q.items.length === 0) return;
    this.queue = { items: [], since: 0 };
    this.inFlight++;
    void this.send(q);
  }

  private readonly endOfTurn = () => {
    this.scheduled = false;
    if (this.queue.items.length === 0) return;
    if (this.inFlight < IN_FLIGHT) this.flush();
    else this.holdTimer ??= setTimeout(() => this.flush(), HOLD_MS);
  };

  /**
   * A call returned (or failed): what waited for it goes now, before its callers are answered, so that Redis stores
   * the next batch (and fsyncs it) while this process writes the answers of the last.
   */
  private readonly callReturned = () => {
    this.inFlight--;
    if (this.holdTimer && this.inFlight < IN_FLIGHT) this.flush();
  };

  /**
   * Reads Redis's clock on the namespace's node (the command connection's heartbeat): publish deadlines are set on
   * Redis's clock, so the offset to ours is kept, from the reading with the shortest round trip among the last 8
   * (its error is at most half that round trip).
   */
  async clock(): Promise<void> {
    const t0 = Date.now();
    const redisMs = await this.d.scripts.clock();
    const t1 = Date.now();
    this.clockSamples.push({ rtt: t1 - t0, offset: redisMs - (t0 + t1) / 2 });
    if (this.clockSamples.length > 8) this.clockSamples.shift();
    this.clockOffset = this.clockSamples.reduce((best, s) => (s.rtt < best.rtt ? s : best)).offset;
  }

  private async send({ items: batch, since }: Queue): Promise<void> {
    const { scripts, guard } = this.d;
    // Answered within DPS_REDIS_TIMEOUT whatever Redis does. The script refuses to run past its deadline (on Redis's
    // clock), and a call that may have reached Redis is answered with an error only once that deadline has passed:
    // a publish answered `unavailable` can never be stored later (held by a stalled network, resent by a Cluster
    // client, or retransmitted by the kernel after its socket was destroyed).
    // From the first publish's arrival: time it waited for the call before is part of its DPS_REDIS_TIMEOUT.
    const window = (this.opts.redisTimeoutMs ?? 5000) - ANSWER_MARGIN_MS;
    const deadline = Math.round(since + this.clockOffset + window);
    let answered = false;
    // Made only when needed: an Error's stack trace costs microseconds, and a batch is often one HTTP request.
    let failure: DpsError | undefined;
    const failAll = () => {
      if (answered) return;
      answered = true;
      failure ??= new DpsError('unavailable', `Redis did not answer within ${window + ANSWER_MARGIN_MS} ms; nothing was stored`);
      for (const m of batch) m.done(failure, 0, false);
    };
    const guardTimer = setTimeout(failAll, since + window + CLOCK_SLACK_MS - Date.now());
    let reply: PublishReply;
    let sent = false;
    try {
      if (!guard.verified) await guard.verify();
      sent = true;
      const call = scripts.publishmany({
        messages: batch,
        deadline,
        maxLen: this.opts.retentionMaxLen,
        idemWindowSec: this.opts.idempotencyWindowSec,
      });
      reply = await this.d.timed('publish', call);
    } catch (err) {
      failure = this.d.mapError(err);
      this.callReturned();
      // Never sent, or refused by Redis: nothing was done, say so now. Otherwise the timer answers after the deadline.
      if (!sent || neverRan(err)) {
        clearTimeout(guardTimer);
        failAll();
      }
      return;
    }
    clearTimeout(guardTimer);
    guard.observe(reply.epoch);
    this.callReturned();
    // Stored before its deadline, but the answer came back too late: the caller was told `unavailable` (the outcome
    // of a failed publish is unknown; a retry with the same key is safe).
    if (answered) return;
    answered = true;
    // Stored messages have consecutive ids in batch order; the reply lists only the repeated keys.
    let next = reply.first;
    for (const [i, m] of batch.entries()) {
      const earlier = reply.repeated.get(i);
      if (earlier !== undefined) m.done(null, earlier, true);
      else m.done(null, next++, false);
    }
    if (this.opts.stats) this.opts.stats.published += next - reply.first;
  }
}
