// Publishing: the publishes of one event-loop turn as one script call, each answered within DPS_REDIS_TIMEOUT, by a deadline on Redis's clock.
import type { EpochGuard } from './epoch';
import { DpsError, neverRan } from './errors';
import type { Outgoing, PublishReply, Scripts } from './redis/commands';
import { TurnBatch } from './turn-batch';

export interface PublishResult {
  id: number;
  dup: boolean;
}

/** Told the outcome of one publish: an error, or the stored id. Must not throw: the rest of its batch is settled after it. */
export type PublishDone = (err: unknown, id: number, dup: boolean) => void;

interface PendingPublish extends Outgoing {
  done: PublishDone;
}

/** messages per publish script call at most */
const PUBLISH_BATCH = 500;
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
  private readonly pending = new TurnBatch<PendingPublish>(PUBLISH_BATCH, (batch) => void this.send(batch));
  /** Redis's clock minus ours (ms), from the clock reading with the shortest round trip among the last few */
  private clockOffset = 0;
  private clockSamples: { rtt: number; offset: number }[] = [];

  constructor(
    private readonly d: PublisherDeps,
    private readonly opts: PublisherOptions,
  ) {}

  /** Queues one message (data: JSON text) for this turn's batch. */
  add(ch: string, data: string, key: string | undefined, done: PublishDone): void {
    this.pending.add({ ch, data, key, done });
  }

  /** Sends the publishes gathered so far now instead of at the end of the turn. */
  flush(): void {
    this.pending.flush();
  }

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

  private async send(batch: PendingPublish[]): Promise<void> {
    const { scripts, guard } = this.d;
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
    const guardTimer = setTimeout(failAll, window + CLOCK_SLACK_MS);
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
      // Never sent, or refused by Redis: nothing was done, say so now. Otherwise the timer answers after the deadline.
      if (!sent || neverRan(err)) {
        clearTimeout(guardTimer);
        failAll();
      }
      return;
    }
    clearTimeout(guardTimer);
    guard.observe(reply.epoch);
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
