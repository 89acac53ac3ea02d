// An Express 5 app with its own routes and durable-pubsub on the same http.Server: WebSockets at /ws, its HTTP API, and publishing from a route.
import { durablePubsub } from '@durable-pubsub/server';
import express from 'express';

const port = Number(process.env.PORT ?? 3000);
const dps = await durablePubsub({ redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });

const app = express();
// Before any body parser: durable-pubsub reads the bodies of its own routes (POST /v1/publish).
app.use(dps.handleRequest);
app.use(express.json());

app.get('/', (_req, res) => {
  res.json({ example: 'express' });
});

app.post('/orders', async (req, res) => {
  const order = req.body;
  if (typeof order?.orderId !== 'string') return res.status(400).json({ error: 'orderId must be a string' });
  // The order's id as the idempotency key: a retried POST publishes the order once ({ id, dup: true } the second time).
  res.json(await dps.publish('orders.eu', order, { key: order.orderId }));
});

const server = app.listen(port, () => console.log(`listening on http://localhost:${port} (WebSocket: ws://localhost:${port}/ws)`));
dps.attach(server, { path: '/ws' });

process.once('SIGTERM', async () => {
  server.close();
  await dps.close(); // acks are saved, WebSockets closed, then Redis: the process exits by itself
});
