// A plain node:http server with its own routes and durable-pubsub: WebSockets at /ws, its HTTP API, and publishing from a route.
import { createServer } from 'node:http';
import { json } from 'node:stream/consumers';
import { durablePubsub } from '@durable-pubsub/server';

const port = Number(process.env.PORT ?? 3000);
const dps = await durablePubsub({ redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });

function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** The app's own routes: everything durable-pubsub does not answer. */
async function app(req, res) {
  if (req.method === 'GET' && req.url === '/') return reply(res, 200, { example: 'node-http' });
  if (req.method === 'POST' && req.url === '/orders') {
    const order = await json(req).catch(() => null);
    if (typeof order?.orderId !== 'string') return reply(res, 400, { error: 'orderId must be a string' });
    // The order's id as the idempotency key: a retried POST publishes the order once ({ id, dup: true } the second time).
    return reply(res, 200, await dps.publish('orders.eu', order, { key: order.orderId }));
  }
  reply(res, 404, { error: 'not found' });
}

const server = createServer((req, res) =>
  dps.handleRequest(req, res, () =>
    app(req, res).catch((err) => {
      console.error(err);
      if (!res.headersSent) reply(res, 500, { error: 'internal error' });
    }),
  ),
);
dps.attach(server, { path: '/ws' });
server.listen(port, () => console.log(`listening on http://localhost:${port} (WebSocket: ws://localhost:${port}/ws)`));

process.once('SIGTERM', async () => {
  server.close();
  await dps.close(); // acks are saved, WebSockets closed, then Redis: the process exits by itself
});
