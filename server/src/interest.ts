// What one connection reads: its patterns, each live from its `since`, within its grant; the replay filter of its catch-up.
import { type Matcher, patternSetKey } from '@durable-pubsub/client-sdk/protocol';
import { type Grant, OPEN_GRANT } from './auth';
import { matcherFor } from './matchers';
import type { ReplayFilter } from './replay';

interface Pattern {
  pattern: string;
  matcher: Matcher;
  /** only ids above this are delivered for this pattern (one subscribed mid-connection is live from then on) */
  since: number;
}

export interface PatternLimits {
  maxPatterns: number;
  maxPatternStars: number;
}

/** Why a pattern set is refused, or null. */
export function patternProblem(patterns: string[], limits: PatternLimits): string | null {
  if (patterns.length > limits.maxPatterns) return `at most ${limits.maxPatterns} patterns per connection`;
  for (const p of patterns)
    if ((p.match(/\*/g)?.length ?? 0) > limits.maxPatternStars) return `at most ${limits.maxPatternStars} '*' in a pattern`;
  return null;
}

/**
 * One string per distinct pattern and pattern-set key in use, not a copy per connection (each hello's JSON holds its
 * own). Only memory rides on it: short strings only, and when it is full it starts anew, so patterns that clients
 * chose and left hold at most ~2.5 MB (INTERNED_MAX of INTERNED_LENGTH).
 */
const INTERNED_MAX = 10_000;
const INTERNED_LENGTH = 256;
const interned = new Map<string, string>();
export function intern(s: string): string {
  if (s.length > INTERNED_LENGTH) return s;
  const held = interned.get(s);
  if (held !== undefined) return held;
  if (interned.size >= INTERNED_MAX) interned.clear();
  interned.set(s, s);
  return s;
}

export class Interest implements ReplayFilter {
  /** in the order added; most connections have one (an array of one costs a third of a Map of one) */
  private patterns: readonly Pattern[] = [];
  /** per channel, the lowest `since` of the patterns matching it (made on first use: most connections never replay) */
  private floors: Map<string, number | null> | undefined;
  /** live offers must be checked per id: a pattern has a `since`, or is being added and has none yet */
  private filtering = false;
  #grant: Grant = OPEN_GRANT;

  get grant(): Grant {
    return this.#grant;
  }

  set grant(grant: Grant) {
    this.#grant = grant;
    this.floors = undefined;
  }

  get list(): string[] {
    return this.patterns.map((p) => p.pattern);
  }

  get size(): number {
    return this.patterns.length;
  }

  private indexOf(pattern: string): number {
    return this.patterns.findIndex((p) => p.pattern === pattern);
  }

  has(pattern: string): boolean {
    return this.indexOf(pattern) >= 0;
  }

  /** The key of this set of patterns (patternSetKey): the connection's durable position is the set's. */
  setKey(): string {
    return intern(patternSetKey(this.list));
  }

  /** The bridge may offer a pattern's messages before its `since` is known: from now on every offer is checked. */
  expectPattern(): void {
    this.filtering = true;
  }

  add(pattern: string, since: number): void {
    if (since > 0) this.filtering = true;
    const p: Pattern = { pattern: intern(pattern), matcher: matcherFor(pattern), since };
    const at = this.indexOf(pattern);
    // A new array of the exact size: a push would grow its store to 17 slots for one pattern.
    this.patterns = at >= 0 ? this.patterns.map((q, i) => (i === at ? p : q)) : this.patterns.concat([p]);
    this.floors = undefined;
  }

  delete(pattern: string): boolean {
    this.floors = undefined;
    const at = this.indexOf(pattern);
    if (at < 0) return false;
    this.patterns = this.patterns.filter((_, i) => i !== at);
    return true;
  }

  /** The highest `since`: this connection has every message of its patterns after this point (with `from`, its resume point). */
  coveredFrom(from: number): number {
    let covered = from;
    for (const s of this.patterns) covered = Math.max(covered, s.since);
    return covered;
  }

  /** May the grant read `ch`? Isolation: a channel outside it is neither delivered nor reported as a gap. */
  readable(ch: string): boolean {
    return !this.#grant.limitsReading || this.#grant.canRead(ch);
  }

  /** Does this connection want message `id` of `ch`? */
  wants(ch: string, id: number): boolean {
    if (!this.readable(ch)) return false;
    for (const s of this.patterns) if (id > s.since && s.matcher(ch)) return true;
    return false;
  }

  /** A live message the bridge offered because one of this connection's patterns matches it: is it for this connection? */
  takesOffer(ch: string, id: number): boolean {
    return this.filtering ? this.wants(ch, id) : this.readable(ch);
  }

  channelFloor(ch: string): number | null {
    this.floors ??= new Map();
    let floor = this.floors.get(ch);
    if (floor === undefined) {
      floor = null;
      if (this.readable(ch)) for (const s of this.patterns) if (s.matcher(ch) && (floor === null || s.since < floor)) floor = s.since;
      this.floors.set(ch, floor);
    }
    return floor;
  }
}
