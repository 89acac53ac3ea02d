// A Fastify 5 app with its own routes and durable-pubsub on fastify.server: WebSockets at /ws, its HTTP API, and publishing from a route.
import { createServer } from 'node:http';
import { durablePubsub } from '@durable-pubsub/server';
import Fastify from 'fastify';

const port = Number(process.env.PORT ?? 3000);
const dps = await durablePubsub({ redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });

const fastify = Fastify({
  logger: true,
  // durable-pubsub's HTTP API (/v1/*, /healthz, /readyz, /metrics) answers first, with the unread body;
  // every other request goes on to Fastify.
  serverFactory: (handler) => createServer((req, res) => dps.handleRequest(req, res, () => handler(req, res))),
});
dps.attach(fastify.server, { path: '/ws' });
// Its WebSockets would keep the server from closing: close durable-pubsub first.
fastify.addHook('preClose', () => dps.close());

fastify.get('/', async () => ({ example: 'fastify' }));

const orderSchema = { body: { type: 'object', required: ['orderId'], properties: { orderId: { type: 'string' } } } };
fastify.post('/orders', { schema: orderSchema }, async (request) => {
  // The order's id as the idempotency key: a retried POST publishes the order once ({ id, dup: true } the second time).
  return dps.publish('orders.eu', request.body, { key: request.body.orderId });
});

await fastify.listen({ port });
process.once('SIGTERM', () => fastify.close());
