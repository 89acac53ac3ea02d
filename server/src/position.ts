// One connection's durable position: its acks, stored one write at a time, and its moves between pattern sets.
import type { Logger } from './log';
import type { Store } from './store';

export interface PositionStart {
  recipient: string;
  epoch: string;
  setKey: string;
  /** where the connection's stream starts */
  resumeFrom: number;
  /** the stored position of its set */
  acked: number;
}

/**
 * A connection acks its pattern set's position, never beyond what it was sent. It also keeps a position of its own
 * (where it resumed, raised by its own acks): what a sub/unsub carries to a set the recipient has not used yet.
 */
export class Position {
  recipient = '';
  epoch = '';
  /** the key of this connection's pattern set (patternSetKey): its durable position is the set's */
  setKey = '';
  /** the stored position of this connection's set, as far as this connection knows */
  acked = 0;
  /** this connection's own position: where it resumed, raised by its own acks */
  private own = 0;
  /** where this connection's stream started: it has every wanted message after it on its hello patterns */
  private resumedFrom = 0;
  /** its acks may move its set's position (see move) */
  private ackable = true;
  private wanted = 0;
  private flushing: Promise<void> | null = null;
  /** a move to another set: acks wait for it, so none lands on a set not yet there */
  private moving: Promise<unknown> | undefined;

  constructor(
    private readonly store: Pick<Store, 'ack' | 'subscriptions'>,
    private readonly log: Logger,
    /** told when the log was reset under this connection (new epoch): it must reconnect */
    private readonly host: { epochGone(): void },
  ) {}

  start(s: PositionStart): void {
    this.recipient = s.recipient;
    this.epoch = s.epoch;
    this.setKey = s.setKey;
    this.own = this.resumedFrom = s.resumeFrom;
    this.acked = s.acked;
  }

  /** An ack of `id`; `sent` is the highest id this connection was sent (an ack must not trim unseen messages). */
  ack(id: number, sent: number): void {
    const capped = Math.min(id, sent);
    if (capped > this.own) this.own = capped;
    if (!this.ackable || capped <= this.acked || capped <= this.wanted) return;
    this.wanted = capped;
    void this.flush();
  }

  /** Stores the newest ack; one write at a time, and the promise covers acks that arrive meanwhile. */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async write(): Promise<void> {
    try {
      for (;;) {
        await this.moving;
        if (!this.ackable || this.wanted <= this.acked) return;
        const id = this.wanted;
        const setKey = this.setKey;
        const r = await this.store.ack(this.recipient, setKey, id, this.epoch);
        if (r.status === 'epoch-gone') return this.host.epochGone();
        // Moved to another set meanwhile: that set's position is what counts now.
        if (setKey === this.setKey) this.acked = r.status === 'forgotten' ? id : Math.max(this.acked, r.position);
      }
    } catch {
      // Redis is down: the next (cumulative) ack carries this one.
    }
  }

  /**
   * After a sub/unsub the connection uses another pattern set. A set the recipient has not used starts at this
   * connection's own position; one it has keeps its position (another device may rely on it), and this connection
   * acks it only if it can vouch for everything after that position: a pattern subscribed mid-connection has no
   * backlog, so its messages before `since` never reached it (`coveredFrom`: the highest since). Otherwise its acks
   * would let that device's unseen messages be trimmed or skipped; it keeps its own position for the next move instead.
   */
  move(setKey: string, coveredFrom: (resumedFrom: number) => number): void {
    if (setKey === this.setKey) return;
    const from = this.setKey;
    const pending = this.ackable && this.wanted > this.acked ? this.wanted : 0;
    this.setKey = setKey;
    this.ackable = false;
    const position = this.own;
    const covered = coveredFrom(this.resumedFrom);
    const { store } = this;
    this.moving = (this.moving ?? Promise.resolve())
      .then(async () => {
        // Acks received before the move were for the old set.
        if (pending) await store.ack(this.recipient, from, pending, this.epoch);
        const placed = await store.subscriptions.place(this.recipient, setKey, position);
        if (setKey !== this.setKey) return;
        if (placed.status === 'forgotten') {
          this.acked = this.wanted = position;
          return;
        }
        this.acked = this.wanted = placed.position;
        this.ackable = !placed.existed || placed.position >= covered;
        if (this.ackable && this.own > this.acked) {
          this.wanted = this.own;
          void this.flush();
        }
      })
      .catch((err) => this.log.debug('could not move to the new pattern set', { recipient: this.recipient, err: String(err) }));
  }
}
