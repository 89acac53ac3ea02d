// Writes to one WebSocket: ws's own frames and bytes framed once for many sockets, in order, paced by the reader.
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { BurstCorker } from './cork';
import type { Outlet } from './handover';
import { drained } from './pacing';

const TEXT = { binary: false } as const;

/** A WebSocket close reason is at most 123 bytes of UTF-8. */
function closeReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let cut = reason.slice(0, 120);
  while (Buffer.byteLength(cut) > 120) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** One per server, shared by its sockets (an object and a closure per connection cost ~100 B each). */
export interface OutletOptions {
  corker: BurstCorker;
  /** the send buffer's high-water mark: replay waits below it */
  highWater: number;
  /** a reader that takes nothing at all for this long is stalled */
  stallMs: number;
}

export interface OutletHost {
  /** the reader stalled: the connection is closed (it resumes from its acked position) */
  stalled(): void;
}

export class WsOutlet implements Outlet {
  private readonly socket: Socket | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly o: OutletOptions,
    private readonly host: OutletHost,
  ) {
    this.socket = (ws as unknown as { _socket?: Socket })._socket;
  }

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  get buffered(): number {
    return this.ws.bufferedAmount;
  }

  sendText(text: string): void {
    if (!this.open) return;
    // Answers of one burst (e.g. a batch's pubacks resolved together) go out in one write.
    this.o.corker.cork(this.socket);
    this.ws.send(text, TEXT);
  }

  /**
   * Bytes already framed (wire.ts), written next to ws's own frames, in order. Only while the socket is
   * open, as ws.send does: nothing may follow a close frame, and every write after the socket's end fails
   * by building an Error (live messages reaching 2,000 closing sessions took the storm from 6 s to 21 s).
   */
  writeFrames(bytes: Buffer): void {
    if (this.open) this.socket?.write(bytes);
  }

  /** The writes of this burst of synchronous work go out together. */
  burst(): void {
    this.o.corker.cork(this.socket);
  }

  cork(): void {
    this.socket?.cork();
  }

  uncork(): void {
    this.socket?.uncork();
  }

  /** Starts the closing handshake (nothing is written after it). */
  close(code: number, reason: string): void {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(code, closeReason(reason));
  }

  /** Resolves once the send buffer is below the high-water mark (replay is paced by the reader). */
  writable(highWater = this.o.highWater): Promise<void> {
    if (!this.open || this.ws.bufferedAmount <= highWater) return Promise.resolve();
    const ws = this.ws;
    return drained(
      { buffered: () => ws.bufferedAmount, socket: this.socket, closes: ws },
      {
        highWater,
        timeoutMs: this.o.stallMs,
        stopped: () => !this.open,
        onStalled: () => {
          this.host.stalled();
          // The close frame waits behind data the reader does not take: free the socket now.
          setTimeout(() => this.ws.terminate(), 1000).unref();
        },
      },
    );
  }
}
