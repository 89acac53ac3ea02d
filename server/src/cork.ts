// Batches the writes of one burst of live messages per socket: cork on first write, uncork in a microtask.
import type { Socket } from 'node:net';

const corked = new Set<Socket>();
let scheduled = false;

function flush(): void {
  scheduled = false;
  for (const s of corked) s.uncork();
  corked.clear();
}

/** Corks `socket` until the current burst of synchronous work is over. */
export function corkForBurst(socket: Socket | undefined): void {
  if (!socket || corked.has(socket)) return;
  socket.cork();
  corked.add(socket);
  if (!scheduled) {
    scheduled = true;
    queueMicrotask(flush);
  }
}
