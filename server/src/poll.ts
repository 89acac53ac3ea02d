// GET /v1/poll: one long-poll, served by the same hand-over as a WebSocket: the catch-up at once, else the first live messages, else nothing after `timeout`.
import type { ServerResponse } from 'node:http';
import type { HelloFrame } from '@durable-pubsub/client-sdk/protocol';
import { Connection, type ConnectionDeps } from './connection';
import { type Outlet, streamOptions } from './handover';
import { isGapPayload } from './sse';
import { eachPayload } from './wire';

/** messages of one answer, in bytes of frames (past it the answer goes with what it has: its `next` says where it stopped) */
export const POLL_MAX_BYTES = 1 << 20;
const COMMA = Buffer.from(',');

/** Collects what the hand-over sends, for one answer; memory stays bounded by POLL_MAX_BYTES and one replay page. */
class PollOutlet implements Outlet {
  readonly msgs: Buffer[] = [];
  readonly gaps: string[] = [];
  bytes = 0;
  /** the id of the newest `live` frame: everything wanted up to it was collected */
  live = -1;

  constructor(private readonly poll: PollRequest) {}

  get open(): boolean {
    return !this.poll.answered;
  }

  /** Nothing waits on a socket: the answer is one write at the end. */
  get buffered(): number {
    return 0;
  }

  sendText(text: string): void {
    const f = JSON.parse(text) as { op: string; id: number };
    if (f.op === 'live') this.live = f.id;
    else this.gaps.push(text);
    this.poll.collected(f.op === 'live');
  }

  writeFrames(bytes: Buffer): void {
    eachPayload(bytes, (p) => {
      if (isGapPayload(p)) this.gaps.push(p.toString('utf8'));
      else {
        this.msgs.push(p);
        this.bytes += p.length;
      }
    });
    this.poll.collected(false);
  }

  burst(): void {}
  cork(): void {}
  uncork(): void {}

  /** Between replay pages: once an answer's worth is there, it goes, and the catch-up stops. */
  writable(): Promise<void> {
    if (this.bytes >= POLL_MAX_BYTES) this.poll.answer();
    return Promise.resolve();
  }
}

export class PollRequest extends Connection {
  // On the prototype, not a field of every connection.
  get kind(): string {
    return 'poll';
  }
  private readonly out = new PollOutlet(this);
  answered = false;
  private epochChanged = false;
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Immediate | undefined;

  constructor(
    private readonly res: ServerResponse,
    deps: ConnectionDeps,
    /** how long an answer with nothing in it waits for something */
    private readonly timeoutMs: number,
  ) {
    super(deps);
    res.on('close', () => {
      this.answered = true;
      if (!this.closeCode) this.closeCode = 1006;
      this.onClosed();
    });
  }

  /** Admits and registers the poll, then collects; before that it throws (a Refusal, or the store's error) for the route. */
  async serve(hello: HelloFrame): Promise<boolean> {
    const r = await this.open(hello, this.out, streamOptions(false, true));
    if (!r || this.closed) return false;
    this.epochChanged = r.epochChanged;
    // With no timeout the answer goes once the catch-up is over (collected), whatever it found.
    if (this.timeoutMs > 0) this.timer = setTimeout(() => this.answer(), this.timeoutMs);
    this.begin(r);
    return true;
  }

  /** Something was collected: once live, the answer goes (at the end of this burst of live messages, with all of it). */
  collected(live: boolean): void {
    if (this.answered || this.state === 'catching-up') return;
    const any = this.out.msgs.length > 0 || this.out.gaps.length > 0;
    if (live && !any && this.timeoutMs > 0) return;
    this.soon ??= setImmediate(() => this.answer());
  }

  /** `{msgs, gaps, next, epochChanged?}`: `next` is where the next poll resumes (the position this answer vouches for). */
  answer(): void {
    if (this.answered) return;
    this.answered = true;
    clearTimeout(this.timer);
    clearImmediate(this.soon);
    const { msgs, gaps, live } = this.out;
    const upTo = Math.max(this.stream?.lastSent ?? 0, live);
    const tail = `],"gaps":[${gaps.join(',')}],"next":${JSON.stringify(`${this.epoch}:${upTo}`)}${this.epochChanged ? ',"epochChanged":true' : ''}}`;
    const body = Buffer.concat([Buffer.from('{"msgs":['), ...msgs.flatMap((m, i) => (i ? [COMMA, m] : [m])), Buffer.from(tail)]);
    this.closeCode = 1000;
    this.res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length }).end(body);
    this.onClosed();
  }

  /** The server ends the poll (shutdown, a new epoch, an expired token): what was collected goes; the next poll says more. */
  close(code: number, _reason: string): void {
    if (this.closed) return;
    if (this.res.headersSent || this.state === 'hello' || this.state === 'opening') {
      this.closeCode = code;
      this.onClosed();
      return;
    }
    this.answer();
  }

  fail(err: unknown): void {
    if (this.closed || this.answered) return;
    this.answered = true;
    clearTimeout(this.timer);
    const e = this.dpsError(err);
    const body = JSON.stringify({ error: { code: e.code, message: e.message } });
    this.res.writeHead(e.status, { 'content-type': 'application/json; charset=utf-8' }).end(body);
    this.onClosed();
  }

  protected override onClosed(): void {
    clearTimeout(this.timer);
    clearImmediate(this.soon);
    super.onClosed();
  }
}
