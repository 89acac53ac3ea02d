// Replay is paced by its reader: wait until a socket's send buffer has drained, or give up on a reader that stalls.
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

export interface DrainOptions {
  /** resolves once the buffer is at half of this (hysteresis: not a wake-up per write) */
  highWater: number;
  /** a reader that takes nothing at all for this long is stalled */
  timeoutMs: number;
  /** the connection is gone: stop waiting */
  stopped(): boolean;
  /** called once when the reader stalls; the wait then ends */
  onStalled(): void;
}

/** Resolves once `ws`'s send buffer is at half the high-water mark, the connection ends, or the reader stalls. */
export function drained(ws: WebSocket, socket: Socket | undefined, o: DrainOptions): Promise<void> {
  return new Promise((resolve) => {
    let buffered = ws.bufferedAmount;
    let progressAt = Date.now();
    const done = () => {
      clearInterval(watch);
      socket?.off('drain', check);
      ws.off('close', check);
      resolve();
    };
    const check = () => {
      if (o.stopped() || ws.bufferedAmount <= o.highWater / 2) done();
    };
    const watch = setInterval(
      () => {
        if (ws.bufferedAmount < buffered) {
          buffered = ws.bufferedAmount;
          progressAt = Date.now();
        } else if (Date.now() - progressAt >= o.timeoutMs) {
          o.onStalled();
          done();
        }
      },
      Math.max(5, o.timeoutMs / 4),
    );
    socket?.on('drain', check);
    ws.on('close', check);
  });
}
