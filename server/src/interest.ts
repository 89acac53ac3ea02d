// What one connection reads: its patterns, each live from its `since`, within its grant; the replay filter of its catch-up.
import { type Matcher, patternSetKey } from '@durable-pubsub/client-sdk/protocol';
import { type Grant, OPEN_GRANT } from './auth';
import { matcherFor } from './matchers';
import type { ReplayFilter } from './replay';

interface Pattern {
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

export class Interest implements ReplayFilter {
  private readonly patterns = new Map<string, Pattern>();
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
    return [...this.patterns.keys()];
  }

  get size(): number {
    return this.patterns.size;
  }

  has(pattern: string): boolean {
    return this.patterns.has(pattern);
  }

  /** The key of this set of patterns (patternSetKey): the connection's durable position is the set's. */
  setKey(): string {
    return patternSetKey(this.patterns.keys());
  }

  /** The bridge may offer a pattern's messages before its `since` is known: from now on every offer is checked. */
  expectPattern(): void {
    this.filtering = true;
  }

  add(pattern: string, since: number): void {
    if (since > 0) this.filtering = true;
    this.patterns.set(pattern, { matcher: matcherFor(pattern), since });
    this.floors = undefined;
  }

  delete(pattern: string): boolean {
    this.floors = undefined;
    return this.patterns.delete(pattern);
  }

  /** The highest `since`: this connection has every message of its patterns after this point (with `from`, its resume point). */
  coveredFrom(from: number): number {
    let covered = from;
    for (const s of this.patterns.values()) covered = Math.max(covered, s.since);
    return covered;
  }

  /** May the grant read `ch`? Isolation: a channel outside it is neither delivered nor reported as a gap. */
  readable(ch: string): boolean {
    return !this.#grant.limitsReading || this.#grant.canRead(ch);
  }

  /** Does this connection want message `id` of `ch`? */
  wants(ch: string, id: number): boolean {
    if (!this.readable(ch)) return false;
    for (const s of this.patterns.values()) if (id > s.since && s.matcher(ch)) return true;
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
      if (this.readable(ch))
        for (const s of this.patterns.values()) if (s.matcher(ch) && (floor === null || s.since < floor)) floor = s.since;
      this.floors.set(ch, floor);
    }
    return floor;
  }
}
