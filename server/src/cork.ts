// Batches the writes of one burst of live messages per socket: cork on first write, uncork in a microtask.
import type { Socket } from 'node:net';

/** One per server: the sockets it corked in the current burst of synchronous work. */
export class BurstCorker {
  private readonly corked = new Set<Socket>();
  private scheduled = false;
  private readonly flush = (): void => {
    this.scheduled = false;
    for (const s of this.corked) s.uncork();
    this.corked.clear();
  };

  /** Corks `socket` until the current burst of synchronous work is over. */
  cork(socket: Socket | undefined): void {
    if (!socket || this.corked.has(socket)) return;
    socket.cork();
    this.corked.add(socket);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flush);
    }
  }
}
