// A token bucket: `rate` tokens a second, at most `rate` saved up (the per-connection frame rate limit).
export class TokenBucket {
  private tokens: number;
  /** ms since the process started, whole (a small integer: Date.now() boxes a number per connection) */
  private at = Math.trunc(performance.now());

  constructor(private readonly rate: number) {
    this.tokens = rate;
  }

  /** Takes a token; false when there is none left. */
  take(): boolean {
    const now = Math.trunc(performance.now());
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.at) * this.rate) / 1000);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}
