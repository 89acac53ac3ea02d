// Periodic upkeep: trim what every matching pattern set acked, apply retention, forget idle sets and recipients.
import { nanoid } from 'nanoid';
import type { Config } from './config';
import type { Logger } from './log';
import { matcherFor } from './matchers';
import { subMember } from './redis/keys';
import type { Store } from './store';
import { patternsOf } from './subscriptions';

export interface JanitorReport {
  channels: number;
  ackTrimmed: number;
  retentionTrimmed: number;
  /** recipients forgotten (their last pattern set was unused for the TTL) */
  forgotten: string[];
  /** pattern sets of recipients forgotten, theirs included */
  forgottenSets: number;
}

export class Janitor {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<JanitorReport | null> | null = null;
  private readonly owner = nanoid();
  /** per channel, the keys of the pattern sets that match it (see ackFloors) */
  private readonly setsOf = new Map<string, string[]>();
  /** the floor of every pattern set in use, kept up to date from the changes Redis records */
  private sets = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly config: Config,
    private readonly log: Logger,
    /** (recipient, set) pairs with a connection on this node (`subMember`): never forgotten */
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

  /** One pass. With several nodes, only the holder of a short lock trims; every node checks the epoch. */
  async runOnce(force = false): Promise<JanitorReport | null> {
    const { store, config } = this;
    await store.checkEpoch();
    const locked = await store.takeJanitorLock(this.owner, Math.max(50, config.janitorIntervalMs - 10));
    if (!locked && !force) return null;

    const now = Date.now();
    // Ages map to ids through the times heads were first seen, kept for twice the retention age.
    await store.recordHead(now, config.retentionMaxAgeSec * 2000);
    const ageCut = await this.ageCut(now);

    // Each (recipient, pattern set) unused for the TTL is forgotten; a recipient goes with its last set.
    const forgotten: string[] = [];
    let forgottenSets = 0;
    const idle = await store.subscriptions.idle(now - config.recipientTtlSec * 1000);
    // Built only when someone is idle: it is O(connections), and a pass runs every second.
    const here = idle.length ? this.connected() : undefined;
    for (const { recipient, setKey } of idle) {
      if (here?.has(subMember(setKey, recipient))) continue;
      const gone = await store.subscriptions.forget(recipient, setKey);
      if (gone) forgottenSets++;
      if (gone === 'recipient') forgotten.push(recipient);
    }
    if (forgottenSets) this.log.info('forgot idle pattern sets', { sets: forgottenSets, recipients: forgotten.length });

    let ackTrimmed = 0;
    let retentionTrimmed = 0;
    const floors = await this.ackFloors();
    await Promise.all(
      [...floors].map(async ([ch, floor]) => {
        const res = await store.trim(ch, floor, ageCut);
        ackTrimmed += res.acked;
        retentionTrimmed += res.retained;
      }),
    );
    return { channels: floors.size, ackTrimmed, retentionTrimmed, forgotten, forgottenSets };
  }

  /** The highest id older than the retention age (from the recorded head times), or -1. */
  private ageCut(now: number): Promise<number> {
    return this.store.headBefore(now - this.config.retentionMaxAgeSec * 1000);
  }

  /**
   * Per channel, the lowest position among the pattern sets that match it (-1: none matches). The floors of the sets
   * are kept here and updated from the changes Redis recorded since this janitor's previous pass (all are read again
   * when another reader took those changes), and which sets match a channel is remembered: a pass matches only new
   * channels against all sets and new sets against all channels. With 30,000 sets, reading every floor each pass cost
   * ~60 ms. A dry run (`plan`) reads all and takes nothing.
   */
  private async ackFloors(dryRun = false): Promise<Map<string, number>> {
    const [read, channels] = await Promise.all([this.store.subscriptions.floors(dryRun ? '' : this.owner), this.store.channels()]);
    const before = this.sets;
    const sets = read.all ? new Map<string, number>() : before;
    const fresh: string[] = [];
    for (const [key, floor] of read.floors) {
      if (floor === null) sets.delete(key);
      else {
        if (!before.has(key)) fresh.push(key);
        sets.set(key, floor);
      }
    }
    if (!dryRun) this.sets = sets;
    // Patterns are parsed and compiled only for sets not matched yet.
    const compiled = (keys: Iterable<string>) => [...keys].map((key) => ({ key, matchers: patternsOf(key).map(matcherFor) }));
    const freshSets = compiled(fresh);
    let all: typeof freshSets | undefined;
    const floors = new Map<string, number>();
    for (const ch of channels.keys()) {
      let keys = this.setsOf.get(ch);
      const against = keys ? freshSets : (all ??= compiled(sets.keys()));
      keys = (keys ?? []).filter((k) => sets.has(k));
      for (const s of against) if (s.matchers.some((m) => m(ch))) keys.push(s.key);
      this.setsOf.set(ch, keys);
      let floor = -1;
      for (const k of keys) {
        const f = sets.get(k) as number;
        floor = floor === -1 ? f : Math.min(floor, f);
      }
      floors.set(ch, floor);
    }
    for (const ch of this.setsOf.keys()) if (!channels.has(ch)) this.setsOf.delete(ch);
    return floors;
  }

  /** What a pass would remove now, per channel, removing nothing (trim --dry-run). Age uses the recorded head times. */
  async plan(): Promise<{ channel: string; stored: number; byAck: number; byRetention: number }[]> {
    const { store, config } = this;
    const ageCut = await this.ageCut(Date.now());
    const floors = await this.ackFloors(true);
    return Promise.all(
      [...floors].map(async ([channel, floor]) => {
        const { stored, byAck, byAge } = await store.countTrimmable(channel, floor, ageCut);
        const byLength = Math.max(0, stored - byAck - byAge - config.retentionMaxLen);
        return { channel, stored, byAck, byRetention: byAge + byLength };
      }),
    );
  }
}
