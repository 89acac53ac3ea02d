// System B of `pnpm bench`: the bare bridge, the ceiling. ws + one ioredis subscriber connection, one
// PSUBSCRIBE per distinct client pattern, each Redis message forwarded as received to the sockets of its
// pattern (framed once for all of them, writes corked per burst: the known levers, the same as P's).
// No storage, no ids, no acks, no replay.
// A client sends {"sub":"<pattern>"} (any number of times) and gets {"subbed":"<pattern>"} once it is live.
// BARE_WORKERS=N (N > 1): N such processes share the port through node:cluster, as P's `serve --workers` does.
import cluster from 'node:cluster';
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { BurstCorker } from '@durable-pubsub/server/src/cork';
import { textFrame } from '@durable-pubsub/server/src/wire';
import { Redis } from 'ioredis';
import { type WebSocket, WebSocketServer } from 'ws';

const port = Number(process.env.PORT ?? 0);
const WORKERS = Number(process.env.BARE_WORKERS ?? 1);
if (WORKERS > 1 && cluster.isPrimary) {
  let listening = 0;
  for (let i = 0; i < WORKERS; i++)
    cluster.fork().on('message', (m) => {
      if (m === 'listening' && ++listening === WORKERS) process.stdout.write(`listening ${port}\n`);
    });
  process.on('SIGTERM', () => process.exit(0));
} else serveBare();

function serveBare() {
  const sub = new Redis(process.env.REDIS_URL as string, { protocol: 2 });
  const sockets = new Map<string, Set<WebSocket>>();
  const corker = new BurstCorker();

  // The same levers as P: each message framed once for all its sockets (written as bytes), and a burst of
  // Redis messages becomes one write per socket (cork, uncork after the burst).
  sub.on('pmessageBuffer', (pattern: Buffer, _channel: Buffer, message: Buffer) => {
    const set = sockets.get(pattern.toString());
    if (!set) return;
    const wire = textFrame(message);
    for (const ws of set) {
      if (ws.readyState !== ws.OPEN) continue;
      const socket = (ws as unknown as { _socket: Socket })._socket;
      corker.cork(socket);
      socket.write(wire);
    }
  });

  const server = createServer((_req, res) => res.end('bare bridge\n'));
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  wss.on('connection', (ws) => {
    const mine: string[] = [];
    ws.on('message', async (raw) => {
      const { sub: pattern } = JSON.parse(String(raw)) as { sub: string };
      let set = sockets.get(pattern);
      if (!set) {
        set = new Set();
        sockets.set(pattern, set);
        await sub.psubscribe(pattern);
      }
      set.add(ws);
      mine.push(pattern);
      ws.send(JSON.stringify({ subbed: pattern }));
    });
    ws.on('close', () => {
      for (const p of mine) {
        const set = sockets.get(p);
        set?.delete(ws);
        if (set?.size === 0) {
          sockets.delete(p);
          void sub.punsubscribe(p);
        }
      }
    });
  });
  server.listen(port, '127.0.0.1', () => {
    const addr = server.address();
    if (cluster.isWorker) process.send?.('listening');
    else process.stdout.write(`listening ${typeof addr === 'object' && addr ? addr.port : port}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}
