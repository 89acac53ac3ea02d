// Replay is paced by its reader: wait until a socket's send buffer has drained, or give up on a reader that stalls.
import type { EventEmitter } from 'node:events';

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

/** What is paced: its bytes waiting to be sent, the socket that says `drain`, what says `close` when it ends. */
export interface Pipe {
  buffered(): number;
  socket: EventEmitter | null | undefined;
  closes: EventEmitter;
}

/** Resolves once the pipe's send buffer is at half the high-water mark, the connection ends, or the reader stalls. */
export function drained(pipe: Pipe, o: DrainOptions): Promise<void> {
  const { socket, closes } = pipe;
  return new Promise((resolve) => {
    let buffered = pipe.buffered();
    let progressAt = Date.now();
    let over = false;
    const done = () => {
      over = true;
      clearInterval(watch);
      socket?.off('drain', check);
      closes.off('close', check);
      resolve();
    };
    const check = () => {
      if (o.stopped() || pipe.buffered() <= o.highWater / 2) done();
    };
    const watch = setInterval(
      () => {
        const now = pipe.buffered();
        if (now < buffered) {
          buffered = now;
          progressAt = Date.now();
        } else if (Date.now() - progressAt >= o.timeoutMs) {
          // Writes progress when the loop polls its sockets, after the timers: a process busy for that long did not
          // look. It looks once more after the poll; a busy server is not a stalled reader.
          setImmediate(() => {
            if (over) return;
            const later = pipe.buffered();
            if (later < buffered) {
              buffered = later;
              progressAt = Date.now();
              return;
            }
            o.onStalled();
            done();
          });
        }
      },
      Math.max(5, o.timeoutMs / 4),
    );
    socket?.on('drain', check);
    closes.on('close', check);
  });
}
