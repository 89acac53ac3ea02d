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
    const seen = await this.redis.zrange(this.keys.recipients, '0', '-1', 'WITHSCORES');
    const rows = await Promise.all(
      Array.from({ length: seen.length / 2 }, (_, i) => this.info(seen[2 * i] as string, Number(seen[2 * i + 1]))),
    );
    return rows.filter((r): r is RecipientInfo => r !== null);
  }

  /** One recipient and its sets (most recently seen first); null when it does not exist. */
  private async info(name: string, lastSeen: number): Promise<RecipientInfo | null> {
    const k = this.keys;
    const hash = await this.redis.hgetall(k.recipient(name));
    if (hash.acked === undefined) return null;
    const setKeys = Object.keys(hash)
      .filter((f) => f.startsWith('s:'))
      .map((f) => f.slice(2));
    const sets = await Promise.all(
      setKeys.map(async (key) => {
        const [acked, seen] = await Promise.all([
          this.redis.zscore(k.psetPrefix + key, name),
          this.redis.zscore(k.subs, subMember(key, name)),
        ]);
        return { key, patterns: patternsOf(key), acked: Number(acked ?? 0), lastSeen: Number(seen ?? 0) };
      }),
    );
    sets.sort((a, b) => b.lastSeen - a.lastSeen);
    return { name, acked: Number(hash.acked), lastSeen, sets };
  }

  /** Messages after `acked` on the channels (name -> newest id) that `patterns` match: one ZCOUNT per such channel. */
  private async lag(patterns: string[], acked: number, channels: Map<string, number>): Promise<number> {
    const matchers = patterns.map(matcherFor);
    const counts = await Promise.all(
      [...channels]
        .filter(([ch, newest]) => newest > acked && matchers.some((m) => m(ch)))
        .map(([ch]) => this.redis.zcount(this.keys.channel(ch), `(${acked}`, '+inf')),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /**
   * The `n` recipients furthest behind, largest lag first (/metrics' `dps_recipient_lag`), without reading every
   * recipient: `stats()` at 100,000 recipients is a million Redis commands and ~1 GB of garbage per scrape. Within a
   * pattern set the lowest positions lag most, and the lag at a set's floor is the most any of its members can have;
   * so sets are taken in order of that bound, each from its floor up (its `n` lowest positions), until no set left can
   * beat the n-th found. A recipient's lag is the sum over its sets, as in `stats()`; one with several sets is found
   * through its sets' lowest positions (a recipient behind in two sets but in neither set's lowest `n` is missed).
   */
  async furthestBehind(n: number, channels: Map<string, number>): Promise<{ name: string; lag: number }[]> {
    if (n <= 0) return [];
    const lags = new Map<string, Promise<number>>();
    const lagOf = (key: string, acked: number): Promise<number> => {
      const id = `${acked} ${key}`;
      let lag = lags.get(id);
      if (!lag) {
        lag = this.lag(patternsOf(key), acked, channels);
        lags.set(id, lag);
      }
      return lag;
    };
    const { floors } = await this.floors();
    const sets = await Promise.all(
      [...floors].flatMap(([key, floor]) => (floor === null ? [] : [lagOf(key, floor).then((most) => ({ key, most }))])),
    );
    sets.sort((a, b) => b.most - a.most);
    const found = new Map<string, number>();
    const nth = () => [...found.values()].sort((a, b) => b - a)[n - 1] ?? -1;
    for (const set of sets) {
      if (found.size >= n && set.most <= nth()) break;
      const lowest = await this.redis.zrange(this.keys.psetPrefix + set.key, '0', String(n - 1));
      const totals = await Promise.all(
        lowest
          .filter((name) => !found.has(name))
          .map(async (name) => {
            const r = await this.info(name, 0);
            return { name, lag: r ? (await Promise.all(r.sets.map((s) => lagOf(s.key, s.acked)))).reduce((a, b) => a + b, 0) : -1 };
          }),
      );
      for (const t of totals) if (t.lag >= 0) found.set(t.name, t.lag);
    }
    return [...found]
      .map(([name, lag]) => ({ name, lag }))
      .sort((a, b) => b.lag - a.lag)
      .slice(0, n);
  }

  /**
   * Recipients and their sets with their lag: messages after each set's position on channels its patterns match
   * (one ZCOUNT per matching channel, pipelined). `connections`: open connections per `subMember`.
   */
  async stats(channels: Map<string, number>, connections: Map<string, number>): Promise<RecipientStats[]> {
    return Promise.all(
      (await this.list()).map(async (r) => {
        const sets: SetStats[] = await Promise.all(
          r.sets.map(async (s) => ({
            patterns: s.patterns,
            lastAckedId: s.acked,
            lag: await this.lag(s.patterns, s.acked, channels),
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
