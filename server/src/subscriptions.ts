// Positions per (recipient, pattern set) in Redis, outside the connection hot path: moves, forgetting, floors, listing, migration.
import { patternSetKey } from '@durable-pubsub/client-sdk/protocol';
import type { Redis } from 'ioredis';
import { matcherFor } from './matchers';
import type { PlaceOutcome, Scripts } from './redis/commands';
import { type Keys, parseSubMember, subMember } from './redis/keys';

export type { PlaceOutcome } from './redis/commands';

/** One pattern set of a recipient: its own durable position. */
export interface SetInfo {
  /** the canonical key of the set (patternSetKey) */
  key: string;
  patterns: string[];
  acked: number;
  lastSeen: number;
}

export interface RecipientInfo {
  name: string;
  /** its newest position, on any set: where a set it has not used before starts */
  acked: number;
  lastSeen: number;
  /** most recently seen first */
  sets: SetInfo[];
}

export interface SetStats {
  patterns: string[];
  lastAckedId: number;
  /** messages after this set's position on channels its patterns match */
  lag: number;
  lastSeen: number;
  connections: number;
}

/** GET /v1/recipients: PROTOCOL.md's fields for the recipient as a whole, and each of its sets (an addition). */
export interface RecipientStats {
  name: string;
  /** the newest position of any of its sets */
  lastAckedId: number;
  /** the sum of its sets' lags */
  lag: number;
  lastSeen: number;
  connections: number;
  /** the patterns of its most recently seen set */
  patterns: string[];
  sets: SetStats[];
}

const LAYOUT = '2';

/** The patterns of a set key (patternSetKey); [] for anything else. */
export function patternsOf(key: string): string[] {
  try {
    const v = JSON.parse(key);
    return Array.isArray(v) ? v.filter((p): p is string => typeof p === 'string') : [];
  } catch {
    return [];
  }
}

export class Subscriptions {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly scripts: Scripts,
  ) {}

  /**
   * Puts a recipient on a set. A connection's sub/unsub carries its `position` to a set the recipient has not used
   * (one it has keeps its own); with `create`, an import creates the recipient or moves the set's position forward.
   * The set's position after it and whether the recipient had this set before; or `forgotten` when the recipient does
   * not exist (its connections do not re-create it).
   */
  place(name: string, setKey: string, position: number, create = false): Promise<PlaceOutcome> {
    return this.scripts.place({ recipient: name, setKey, position, create });
  }

  /**
   * Forgets one set of a recipient, or (no set) the whole recipient; a recipient whose last set goes is forgotten.
   * What went: 'recipient' (it is gone), 'set' (it stays with its other sets), or null (nothing to forget).
   */
  forget(name: string, setKey = ''): Promise<'recipient' | 'set' | null> {
    return this.scripts.forget({ recipient: name, setKey });
  }

  /**
   * The janitor's ack floors: per pattern set (by key), its lowest position. For `reader` (a janitor's id), only the sets
   * whose floor changed since its previous call (null: no longer used), unless another reader took the changes meanwhile:
   * then all (`all: true`). Without a reader, all of them, and the record of changes is left alone (a dry run).
   */
  floors(reader = ''): Promise<{ all: boolean; floors: Map<string, number | null> }> {
    return this.scripts.floors({ reader });
  }

  /** The (recipient, set) pairs last seen before `before` (ms). */
  async idle(before: number): Promise<{ recipient: string; setKey: string }[]> {
    return (await this.redis.zrangebyscore(this.keys.subs, '-inf', `(${before}`)).map(parseSubMember);
  }

  /** Marks connected (recipient, set) pairs as seen (only those that still exist), members as `subMember` makes them. */
  async touch(members: Iterable<string>): Promise<void> {
    const now = Date.now();
    const subs: (string | number)[] = [];
    const names = new Set<string>();
    for (const m of members) {
      subs.push(now, m);
      names.add(parseSubMember(m).recipient);
    }
    if (!subs.length) return;
    const recipients: (string | number)[] = [];
    for (const n of names) recipients.push(now, n);
    await Promise.all([this.redis.zadd(this.keys.subs, 'XX', ...subs), this.redis.zadd(this.keys.recipients, 'XX', ...recipients)]);
  }

  async list(): Promise<RecipientInfo[]> {
    const k = this.keys;
    const seen = await this.redis.zrange(k.recipients, '0', '-1', 'WITHSCORES');
    const rows = await Promise.all(
      Array.from({ length: seen.length / 2 }, async (_, i) => {
        const name = seen[2 * i] as string;
        const hash = await this.redis.hgetall(k.recipient(name));
        if (hash.acked === undefined) return null;
        const setKeys = Object.keys(hash)
          .filter((f) => f.startsWith('s:'))
          .map((f) => f.slice(2));
        const sets = await Promise.all(
          setKeys.map(async (key) => {
            const [acked, lastSeen] = await Promise.all([
              this.redis.zscore(k.psetPrefix + key, name),
              this.redis.zscore(k.subs, subMember(key, name)),
            ]);
            return { key, patterns: patternsOf(key), acked: Number(acked ?? 0), lastSeen: Number(lastSeen ?? 0) };
          }),
        );
        sets.sort((a, b) => b.lastSeen - a.lastSeen);
        return { name, acked: Number(hash.acked), lastSeen: Number(seen[2 * i + 1]), sets };
      }),
    );
    return rows.filter((r): r is RecipientInfo => r !== null);
  }

  /**
   * Recipients and their sets with their lag: messages after each set's position on channels its patterns match
   * (one ZCOUNT per matching channel, pipelined). `connections`: open connections per `subMember`.
   */
  async stats(channels: Map<string, number>, connections: Map<string, number>): Promise<RecipientStats[]> {
    const lagOf = async (set: SetInfo): Promise<number> => {
      const matchers = set.patterns.map(matcherFor);
      const counts = await Promise.all(
        [...channels]
          .filter(([ch, newest]) => newest > set.acked && matchers.some((m) => m(ch)))
          .map(([ch]) => this.redis.zcount(this.keys.channel(ch), `(${set.acked}`, '+inf')),
      );
      return counts.reduce((a, b) => a + b, 0);
    };
    return Promise.all(
      (await this.list()).map(async (r) => {
        const sets: SetStats[] = await Promise.all(
          r.sets.map(async (s) => ({
            patterns: s.patterns,
            lastAckedId: s.acked,
            lag: await lagOf(s),
            lastSeen: s.lastSeen,
            connections: connections.get(subMember(s.key, r.name)) ?? 0,
          })),
        );
        return {
          name: r.name,
          lastAckedId: r.acked,
          lag: sets.reduce((a, s) => a + s.lag, 0),
          lastSeen: r.lastSeen,
          connections: sets.reduce((a, s) => a + s.connections, 0),
          patterns: sets[0]?.patterns ?? [],
          sets,
        };
      }),
    );
  }

  /**
   * Converts a namespace written by layout 1 (one position per recipient, with its latest hello's patterns): each
   * position becomes its stored set's. Idempotent, and cheap once done (one GET).
   */
  async migrate(): Promise<void> {
    const k = this.keys;
    if ((await this.redis.get(k.layout)) === LAYOUT) return;
    // Layout 1's index of pattern sets (a plain set); layout 2 keeps floors in its own sorted set.
    await this.redis.del(k.legacyPsets);
    for (const name of await this.redis.zrange(k.recipients, '0', '-1')) {
      const patterns = await this.redis.hget(k.recipient(name), 'patterns');
      if (patterns === null) continue;
      await this.scripts.migrate({ recipient: name, patterns, setKey: patternSetKey(patternsOf(patterns)) });
    }
    await this.redis.set(k.layout, LAYOUT);
  }
}
