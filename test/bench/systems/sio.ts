// System S of `pnpm bench`: Socket.IO 4.8 with connection state recovery on @socket.io/redis-streams-adapter,
// configured as the Socket.IO docs show. Rooms stand in for patterns (Socket.IO has no pattern subscriptions).
// Client events: "sub" (room) → joins, acked; "pub" ({ room, data }) → broadcast to the room as "m".
import { createServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';

const port = Number(process.env.PORT ?? 0);
const redis = new Redis(process.env.REDIS_URL as string);
const server = createServer();
const io = new Server(server, {
  adapter: createAdapter(redis),
  connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000, skipMiddlewares: true },
  perMessageDeflate: false,
  transports: ['websocket'],
});
io.on('connection', (socket) => {
  socket.on('sub', (room: string, ack?: () => void) => {
    socket.join(room);
    ack?.();
  });
  socket.on('pub', (msgs: { room: string; data: unknown }[], ack?: () => void) => {
    for (const m of msgs) io.to(m.room).emit('m', m.data);
    ack?.();
  });
});
server.listen(port, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`listening ${typeof addr === 'object' && addr ? addr.port : port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
