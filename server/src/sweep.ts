// One timer that visits every member of a set once per period, a slice at a time (the heartbeat of every connection,
// and the touch of their positions). Visiting 100,000 connections in one turn (a ping each) held the event loop for a
// burst; slices spread it evenly.

/** how many slices a period is cut into, and the shortest tick */
const SLICES = 50;
const MIN_TICK_MS = 10;

/**
 * Calls `visit` on every member of `set` once per `periodMs`: each period starts a round over the members in
 * insertion order (those added meanwhile join it), cut into ticks; the round's last tick visits what is left, so a
 * member's visits stay one period apart. `ticked`, if given, is called after each tick that visited a member (to send
 * what the visits gathered). Returns a function that stops it.
 */
export function sweep<T>(set: Set<T>, periodMs: number, visit: (member: T) => void, ticked?: () => void): () => void {
  const slices = Math.max(1, Math.min(SLICES, Math.floor(periodMs / MIN_TICK_MS)));
  let tick = 0;
  let round: IterableIterator<T> = set.values();
  let quota = 0;
  const timer = setInterval(() => {
    const last = tick === slices - 1;
    if (tick === 0) {
      round = set.values();
      quota = Math.ceil(set.size / slices);
    }
    tick = last ? 0 : tick + 1;
    let n = 0;
    for (; last || n < quota; n++) {
      const next = round.next();
      if (next.done) break;
      visit(next.value);
    }
    if (n > 0) ticked?.();
  }, periodMs / slices);
  return () => clearInterval(timer);
}
