// The heartbeat of both Redis connections: a connection that goes silent without closing is noticed and replaced within DPS_REDIS_TIMEOUT.
import redisErrors from 'redis-errors';
import type { Subscriber } from './connect';

const { ReplyError } = redisErrors;

export type Link = 'command' | 'subscriber';

export interface LivenessOptions {
  timeoutMs: number;
  /** the command connection's probe (the store's clock reading, which also measures Redis's clock) */
  probeCommand(): Promise<unknown>;
  /** is the command connection connected at all */
  commandReady(): boolean;
  /** the command connection's events (its `error`) */
  command: { on(event: 'error', fn: (err: Error) => void): unknown };
  subscriber: Subscriber;
  /** ioredis destroyed the socket of `link` because it answered nothing for half the timeout (it reconnects) */
  onSilent(link: Link): void;
}

/**
 * Every quarter of the timeout, one probe per connection: it keeps a command waiting, so ioredis's socketTimeout (half
 * the timeout, connect.ts) destroys a socket that stops answering, and the connection reconnects (the bridge sees
 * close then ready: a hole in live delivery, caught up from the store). A reply error counts as an answer: under
 * MISCONF Redis refuses even PING, and the connection is alive. `up` says whether each connection answered within
 * the timeout (/readyz).
 */
export class Liveness {
  private timer: NodeJS.Timeout | undefined;
  private readonly answered: Record<Link, number>;
  /** when the probe still waiting for its answer was sent (0: none waits) */
  private readonly waiting: Record<Link, number> = { command: 0, subscriber: 0 };

  constructor(private readonly o: LivenessOptions) {
    const now = Date.now();
    this.answered = { command: now, subscriber: now };
    for (const [conn, link] of [
      [o.command, 'command'],
      [o.subscriber, 'subscriber'],
    ] as const)
      conn.on('error', (err: Error) => {
        if (/^Socket timeout/.test(err.message)) o.onSilent(link);
      });
  }

  start(): void {
    this.timer = setInterval(() => this.beat(), Math.max(50, this.o.timeoutMs / 4));
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * The connection is connected, answered within the timeout, and its probe has not waited longer than a healthy one
   * ever does (a quarter of the timeout): silence shows here before ioredis gives up on the socket.
   */
  up(link: Link): boolean {
    const connected = link === 'command' ? this.o.commandReady() : this.o.subscriber.status === 'ready';
    const now = Date.now();
    const stuck = this.waiting[link] !== 0 && now - this.waiting[link] > this.o.timeoutMs / 4;
    return connected && !stuck && now - this.answered[link] < this.o.timeoutMs;
  }

  private beat(): void {
    this.probe('command', this.o.commandReady(), this.o.probeCommand);
    this.probe('subscriber', this.o.subscriber.status === 'ready', () => this.o.subscriber.ping('hb'));
  }

  private probe(link: Link, connected: boolean, send: () => Promise<unknown>): void {
    if (!connected || this.waiting[link]) return;
    const sent = Date.now();
    this.waiting[link] = sent;
    const done = (answered: boolean) => {
      if (this.waiting[link] === sent) this.waiting[link] = 0;
      if (answered) this.answered[link] = Date.now();
    };
    send().then(
      () => done(true),
      (err) => done(err instanceof ReplyError),
    );
  }
}
