// The namespace's pub/sub mode (classic | sharded), stored in Redis: read, decided by the first node, switched by the CLI.
import { Cluster, type Redis } from 'ioredis';
import { DpsError } from './errors';
import type { PubsubMode, Scripts } from './redis/commands';
import { connect, primaries, shardedPubsub } from './redis/connect';
import type { Keys } from './redis/keys';

export type { PubsubMode } from './redis/commands';

/** How a node came to its mode: it was stored, or this node decided it (and why). */
export interface Resolved {
  mode: PubsubMode;
  /** this call stored it (the namespace had none) */
  decided: boolean;
  /** why this mode was chosen, when this call chose it */
  why?: string;
}

/**
 * The mode is a property of the namespace, never of a node: the publish scripts read it on every call, and every
 * node subscribes by it, whatever its own DPS_SHARDED_PUBSUB says. Nodes in different modes would miss each other's
 * live messages, and since ids are namespace-wide, a session that got a later id drops the missed one for good.
 */
export class PubsubModes {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly scripts: Scripts,
  ) {}

  /** The stored mode; null when the namespace has none yet (its scripts publish classic meanwhile). */
  async get(): Promise<PubsubMode | null> {
    return (await this.scripts.pubsubMode('get')) || null;
  }

  /**
   * The stored mode, or when there is none, the first node's choice (set if still absent, then re-read: two nodes
   * starting together agree): sharded if `preference` is auto, every primary runs Redis >= 7 and no classic subscriber
   * is visible on any node (a node of an older version, which subscribes classic, is running); else classic.
   */
  async resolve(preference: 'auto' | 'off'): Promise<Resolved> {
    const stored = await this.get();
    if (stored) return { mode: stored, decided: false };
    const { mode: choice, why } = await this.choose(preference);
    const mode = (await this.scripts.pubsubMode('init', choice)) as PubsubMode;
    return mode === choice ? { mode, decided: true, why } : { mode, decided: false };
  }

  private async choose(preference: 'auto' | 'off'): Promise<{ mode: PubsubMode; why: string }> {
    if (preference === 'off') return { mode: 'classic', why: 'DPS_SHARDED_PUBSUB=off' };
    if (!(await shardedPubsub(this.redis))) return { mode: 'classic', why: 'a primary runs Redis < 7' };
    const seen = await this.classicSubscribers();
    if (seen === null) return { mode: 'classic', why: 'a Redis node did not answer PUBSUB: a classic subscriber may be running' };
    if (seen > 0) return { mode: 'classic', why: `${seen} classic subscription(s) visible (a node of an older version may be running)` };
    return { mode: 'sharded', why: 'every primary runs Redis >= 7 and no classic subscriber is visible' };
  }

  /**
   * Pattern subscriptions (PUBSUB NUMPAT: what a node of an older version holds, narrow or wide) and subscribers of
   * this namespace's classic control channel, summed over every node (replicas too: an older Cluster subscriber may sit
   * on any). Patterns are not per namespace in Redis: another namespace's or application's count too (classic is the
   * safe side). Null when a node did not answer.
   */
  async classicSubscribers(): Promise<number | null> {
    const nodes = this.redis instanceof Cluster ? (this.redis as unknown as Cluster).nodes('all') : [this.redis];
    const counts = await Promise.allSettled(
      nodes.map(async (r) => {
        await connect(r, 5000);
        const numpat = Number(await r.call('PUBSUB', 'NUMPAT'));
        const numsub = (await r.call('PUBSUB', 'NUMSUB', this.keys.modeChannel)) as [string, number];
        return numpat + Number(numsub[1]);
      }),
    );
    let sum = 0;
    for (const c of counts) {
      if (c.status === 'rejected') return null;
      sum += c.value;
    }
    return sum;
  }

  /**
   * Switches the namespace to `mode` with no loss: one script sets it and publishes a marker on the old path after
   * every message published the old way; each node that gets it moves, and its connections catch up from the store.
   * Sharded needs Redis >= 7 on every primary. Answers the mode it was in before.
   */
  async switch(mode: PubsubMode): Promise<PubsubMode> {
    if (mode !== 'classic' && mode !== 'sharded') throw new DpsError('bad_request', 'the pub/sub mode is classic or sharded');
    if (mode === 'sharded' && !(await shardedPubsub(this.redis)))
      throw new DpsError('bad_request', `sharded pub/sub needs Redis >= 7 on every primary (${primaries(this.redis).length} asked)`);
    const before = (await this.get()) ?? 'classic';
    await this.scripts.pubsubMode('set', mode);
    return before;
  }
}
