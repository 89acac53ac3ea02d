// Reconnect delays: exponential backoff with full jitter (a pure function, so it is easy to test).

/** A delay in [0, min(max, base * 2^attempt)), drawn uniformly ("full jitter"). */
export function backoff(attempt: number, base: number, max: number, random: () => number = Math.random): number {
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
