// The namespace's pub/sub mode (classic | sharded), stored in Redis: read, decided by the first node, switched by the CLI.
import { Cluster, type Redis } from 'ioredis';
import type { Bridge } from './bridge';
import { DpsError } from './errors';
import type { Logger } from './log';
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

  /** The stored mode; null when the namespace has none (its scripts publish both ways meanwhile: includes/pubsub.lua). */
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
    if (typeof seen === 'string') return { mode: 'classic', why: `${seen}: a node of an older version may be running unseen` };
    if (seen.patterns + seen.control > 0)
      return { mode: 'classic', why: `classic subscriptions visible (${seen.patterns} patterns, ${seen.control} on the control channel)` };
    if (seen.older > 0)
      return { mode: 'classic', why: `${seen.older} subscriber connection(s) of a version without pub/sub modes connected` };
    return { mode: 'sharded', why: 'every primary runs Redis >= 7 and no classic subscriber is visible' };
  }

  /**
   * What a classic subscriber leaves to see, summed over every node (replicas too: an older Cluster subscriber may sit
   * on any): pattern subscriptions (PUBSUB NUMPAT: what a node of an older version holds, narrow or wide), subscribers
   * of this namespace's classic control channel (a node of this version in classic mode), and connections named
   * `dps-subscriber` (CLIENT LIST): an older node whose clients hold no pattern yet subscribes to nothing, but its
   * subscriber connection is there. Neither patterns nor names are per namespace in Redis: another namespace's or
   * application's count too (classic is the safe side). Why not, when a node did not answer or refused.
   */
  async classicSubscribers(): Promise<{ patterns: number; control: number; older: number } | string> {
    const nodes = this.redis instanceof Cluster ? (this.redis as unknown as Cluster).nodes('all') : [this.redis];
    const counts = await Promise.allSettled(
      nodes.map(async (r) => {
        await connect(r, 5000);
        const patterns = Number(await r.call('PUBSUB', 'NUMPAT'));
        const numsub = (await r.call('PUBSUB', 'NUMSUB', this.keys.modeChannel)) as [string, number];
        const clients = (await r.call('CLIENT', 'LIST')) as string;
        const older = clients.split('\n').filter((line) => line.includes(' name=dps-subscriber ')).length;
        return { patterns, control: Number(numsub[1]), older };
      }),
    );
    const sum = { patterns: 0, control: 0, older: 0 };
    for (const c of counts) {
      if (c.status === 'rejected') return `a Redis node did not answer PUBSUB NUMPAT or CLIENT LIST (${String(c.reason)})`;
      sum.patterns += c.value.patterns;
      sum.control += c.value.control;
      sum.older += c.value.older;
    }
    return sum;
  }

  /**
   * Switches the namespace to `mode` with no loss: one script sets it and publishes a marker on the old path after
   * every message published the old way; each node that gets it moves, and its connections catch up from the store.
   * Sharded needs Redis >= 7 on every primary, and, unless `force`, no node of a version without pub/sub modes
   * connected (it listens classic whatever the mode says). Answers the mode it was in before.
   */
  async switch(mode: PubsubMode, opts: { force?: boolean } = {}): Promise<PubsubMode> {
    if (mode !== 'classic' && mode !== 'sharded') throw new DpsError('bad_request', 'the pub/sub mode is classic or sharded');
    if (mode === 'sharded' && !(await shardedPubsub(this.redis)))
      throw new DpsError('bad_request', `sharded pub/sub needs Redis >= 7 on every primary (${primaries(this.redis).length} asked)`);
    if (mode === 'sharded' && !opts.force) {
      const seen = await this.classicSubscribers();
      if (typeof seen === 'string') throw new DpsError('bad_request', `${seen}; --force to switch anyway`);
      if (seen.older > 0)
        throw new DpsError(
          'bad_request',
          `${seen.older} subscriber connection(s) of a version without pub/sub modes are connected (named dps-subscriber): they listen classic and would miss live messages; upgrade or stop them first, or --force`,
        );
    }
    const before = (await this.get()) ?? 'classic';
    await this.scripts.pubsubMode('set', mode);
    return before;
  }
}

/**
 * The namespace's mode for this node (decided now if it has none), said in the log, with a warning when this node's own
 * setting would have chosen otherwise.
 */
export async function resolveMode(
  modes: PubsubModes,
  redis: Redis,
  preference: 'auto' | 'off',
  namespace: string,
  log: Logger,
): Promise<Resolved> {
  const r = await modes.resolve(preference);
  // Only to say so when this node's setting would have chosen otherwise (a classic namespace on Redis >= 7).
  const redisHasSharded = !r.decided && r.mode === 'classic' && preference === 'auto' && (await shardedPubsub(redis).catch(() => false));
  logPubsubMode(log, r, preference, namespace, redisHasSharded);
  return r;
}

/** Says how this node came to the namespace's pub/sub mode, and warns when its own setting would have chosen otherwise. */
function logPubsubMode(log: Logger, r: Resolved, preference: 'auto' | 'off', namespace: string, redisHasSharded: boolean): void {
  if (r.decided) log.info("decided the namespace's pub/sub mode (the first node to start)", { namespace, mode: r.mode, why: r.why });
  else if (preference === 'off' && r.mode === 'sharded')
    log.warn(
      "DPS_SHARDED_PUBSUB=off, but the namespace's pub/sub mode is sharded (stored in Redis): following it. `durable-pubsub pubsub-mode classic` switches it",
      { namespace },
    );
  else if (preference === 'auto' && r.mode === 'classic' && redisHasSharded)
    log.warn(
      "DPS_SHARDED_PUBSUB=auto and Redis has sharded pub/sub, but the namespace's pub/sub mode is classic (stored in Redis): following it. Once no node of an older version runs, `durable-pubsub pubsub-mode sharded` switches it",
      { namespace },
    );
  else log.debug('pub/sub mode', { namespace, mode: r.mode });
}

/**
 * Keeps the bridge on the namespace's mode: read again after each (re)subscription (a switch between reading the mode
 * and subscribing sent its marker before we listened) and every `pollMs` (a node whose subscription missed a switch's
 * marker), deciding again if the mode was lost with Redis's data. Returns the poll's timer.
 */
export function followMode(bridge: Bridge, modes: PubsubModes, preference: 'auto' | 'off', pollMs: number, log: Logger): NodeJS.Timeout {
  const follow = () =>
    void modes.resolve(preference).then(
      (r) => bridge.follow(r.mode),
      () => {},
    );
  bridge.on('up', follow);
  bridge.on('refused', (err, mode) =>
    log.warn('Redis refused the live subscription; retrying at the next read of the pub/sub mode', { mode, err: String(err) }),
  );
  bridge.on('switch', (mode, from, marker) =>
    log.info("the namespace's pub/sub mode changed; moving live delivery, connections catch up from the store meanwhile", {
      mode,
      from,
      by: marker ? 'marker' : 'read',
    }),
  );
  return setInterval(follow, pollMs);
}
