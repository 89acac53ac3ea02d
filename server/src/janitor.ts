// Periodic upkeep: trim what every matching recipient acked, apply retention, forget idle recipients.
import { compileGlob, type Matcher } from '@durable-pubsub/client-sdk/protocol';
import { nanoid } from 'nanoid';
import type { Config } from './config';
import type { Logger } from './log';
import type { Store } from './store';

export interface JanitorReport {
  channels: number;
  ackTrimmed: number;
  retentionTrimmed: number;
  forgotten: string[];
}

export class Janitor {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<JanitorReport | null> | null = null;
  private readonly matchers = new Map<string, Matcher>();
  private readonly owner = nanoid();

  constructor(
    private readonly store: Store,
    private readonly config: Config,
    private readonly log: Logger,
    /** recipients with a connection on this node: never forgotten */
    private readonly connected: () => Set<string>,
  ) {}

  start(): void {
    const tick = () => {
      this.running = this.runOnce().catch((err) => {
        this.log.debug('janitor pass failed', { err: String(err) });
        return null;
      });
      this.running.finally(() => {
        if (this.timer) this.timer = setTimeout(tick, this.config.janitorIntervalMs);
      });
    };
    this.timer = setTimeout(tick, this.config.janitorIntervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private matcher(p: string): Matcher {
    let m = this.matchers.get(p);
    if (!m) {
      if (this.matchers.size > 10_000) this.matchers.clear();
      m = compileGlob(p);
      this.matchers.set(p, m);
    }
    return m;
  }

  /** One pass. With several nodes, only the holder of a short lock trims; every node checks the epoch. */
  async runOnce(force = false): Promise<JanitorReport | null> {
    const { store, config } = this;
    const k = store.keys;
    await store.checkEpoch();
    const lock = await store.redis.set(k.janitorLock, this.owner, 'PX', Math.max(50, config.janitorIntervalMs - 10), 'NX');
    if (lock !== 'OK' && !force) return null;

    const now = Date.now();
    const head = await store.head();
    // Remember when each head was first seen: ids <= H are at least as old as that moment.
    await store.redis
      .multi()
      .zadd(k.times, 'NX', now, String(head))
      .zremrangebyscore(k.times, '-inf', now - config.retentionMaxAgeSec * 2000)
      .exec();
    const old = await store.redis.zrevrangebyscore(k.times, `(${now - config.retentionMaxAgeSec * 1000}`, '-inf', 'LIMIT', 0, 1);
    const ageCut = old[0] === undefined ? -1 : Number(old[0]);

    const forgotten: string[] = [];
    const idle = await store.redis.zrangebyscore(k.recipients, '-inf', `(${now - config.recipientTtlSec * 1000}`);
    const here = this.connected();
    for (const name of idle) {
      if (here.has(name)) continue;
      await store.forgetRecipient(name);
      forgotten.push(name);
    }
    if (forgotten.length) this.log.info('forgot idle recipients', { count: forgotten.length });

    const recipients = await store.recipients();
    const channels = await store.channels();
    let ackTrimmed = 0;
    let retentionTrimmed = 0;
    await Promise.all(
      [...channels.keys()].map(async (ch) => {
        let floor = -1;
        for (const r of recipients) {
          if (!r.patterns.some((p) => this.matcher(p)(ch))) continue;
          floor = floor === -1 ? r.acked : Math.min(floor, r.acked);
        }
        const res = await store.trim(ch, floor, ageCut);
        ackTrimmed += res.acked;
        retentionTrimmed += res.retained;
      }),
    );
    return { channels: channels.size, ackTrimmed, retentionTrimmed, forgotten };
  }
}
