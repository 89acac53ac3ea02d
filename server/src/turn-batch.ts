// Gathers the requests of one event-loop turn so that they go to Redis as one script call.
export class TurnBatch<T> {
  private items: T[] = [];
  private scheduled = false;

  constructor(
    /** a batch is sent at once when it reaches this size */
    private readonly max: number,
    private readonly send: (items: T[]) => void,
  ) {}

  add(item: T): void {
    this.items.push(item);
    if (this.items.length >= this.max) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Sends what is gathered now, without waiting for the turn to end (for a caller whose batch is complete). */
  flush(): void {
    this.scheduled = false;
    const items = this.items;
    this.items = [];
    if (items.length) this.send(items);
  }
}
