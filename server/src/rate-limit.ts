// A token bucket: `rate` tokens a second, at most `rate` saved up (the per-connection frame rate limit). Kept in two
// fields of its holder (the connection), not an object of its own: ~50 B a connection at 100,000 of them.
export interface Bucket {
  /** tokens left */
  tokens: number;
  /** when they were counted: ms since the process started, whole (a small integer; Date.now() boxes a number) */
  tokensAt: number;
}

/** Takes a token from `b`; false when there is none left. */
export function takeToken(b: Bucket, rate: number): boolean {
  const now = Math.trunc(performance.now());
  b.tokens = Math.min(rate, b.tokens + ((now - b.tokensAt) * rate) / 1000);
  b.tokensAt = now;
  if (b.tokens < 1) return false;
  b.tokens--;
  return true;
}
