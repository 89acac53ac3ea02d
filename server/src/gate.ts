// At most N hellos of one server in flight to Redis; the rest wait their turn, first come first served.
// A connect storm of tens of thousands otherwise queues every hello script at once: Redis answers the last ones
// seconds later, past DPS_REDIS_TIMEOUT, and the liveness probe queued behind them declares the connection down.

export class Gate {
  private running = 0;
  private readonly queue: (() => void)[] = [];
  private head = 0;

  constructor(private readonly limit: number) {}

  /** how many wait for a turn */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  /** Runs `fn` once fewer than `limit` others run; resolves or rejects as it does. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.running++;
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  /** The turn passes to the next in line (it keeps the slot), or the slot frees. */
  private release(): void {
    const next = this.queue[this.head];
    if (next === undefined) {
      this.running--;
      return;
    }
    this.queue[this.head++] = undefined as unknown as () => void;
    // Compact now and then instead of shift() per turn (O(n) each on a long queue).
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    next();
  }
}
