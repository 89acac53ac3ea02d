// The states of one connection, the moves between them, and the count per state (the dps_connections gauge).
export type SessionState = 'hello' | 'opening' | 'catching-up' | 'live' | 'closed';

/**
 * hello: waiting for the hello frame. opening: authenticating and registering (live messages are buffered from the
 * bridge's registration on). catching-up: replaying from the store. live: streaming. A live connection goes back to
 * catching-up when its reader falls behind or the bridge lost its subscription.
 */
const NEXT: Record<SessionState, readonly SessionState[]> = {
  hello: ['opening', 'closed'],
  opening: ['catching-up', 'closed'],
  'catching-up': ['live', 'closed'],
  live: ['catching-up', 'closed'],
  closed: [],
};

export function canMove(from: SessionState, to: SessionState): boolean {
  return NEXT[from].includes(to);
}

/** Open connections per state, kept by counting transitions (closed ones are not counted). */
export type StateCounts = Record<Exclude<SessionState, 'closed'>, number>;

export function stateCounts(): StateCounts {
  return { hello: 0, opening: 0, 'catching-up': 0, live: 0 };
}

/** Moves one connection's count from `from` to `to` (`null`: it is new). */
export function countMove(counts: StateCounts, from: SessionState | null, to: SessionState): void {
  if (from !== null && from !== 'closed') counts[from]--;
  if (to !== 'closed') counts[to]++;
}
