// An app with versioned items: GET /state answers the stream's head and then the items, POST /items/:id changes one and publishes it.
import { createServer } from 'node:http';
import { json } from 'node:stream/consumers';
import { durablePubsub } from '@durable-pubsub/server';

const port = Number(process.env.PORT ?? 3000);
// The built page (`pnpm build` writes dist/), served at /.
const staticDir = process.env.STATIC_DIR ?? new URL('./dist', import.meta.url).pathname;
const dps = await durablePubsub({ redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', staticDir });

/** The app's state: id → { id, value, version } (a database table in a real app). */
const items = new Map();

function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function app(req, res) {
  if (req.method === 'GET' && req.url === '/state') {
    // The head first, then the state: every change after the head is in the stream, and the few that land between the
    // two reads are in both (the page ignores a version it already has).
    const position = await dps.head();
    return reply(res, 200, { position, items: [...items.values()] });
  }
  const m = /^\/items\/([a-z0-9-]{1,32})$/.exec(req.url ?? '');
  if (req.method === 'POST' && m) {
    const body = await json(req).catch(() => null);
    if (typeof body?.value !== 'string') return reply(res, 400, { error: 'value must be a string' });
    const item = { id: m[1], value: body.value, version: (items.get(m[1])?.version ?? 0) + 1 };
    // The state changes first, then the change is published: a /state read in between has the change and a head
    // before it (it comes twice, harmless). The other way round it would be missed. (Across a crash between the two,
    // only an outbox keeps them together: docs/outbox.md.)
    items.set(item.id, item);
    const { id } = await dps.publish(`items.${item.id}`, item, { key: `${item.id}@${item.version}` });
    return reply(res, 200, { ...item, published: id });
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
server.listen(port, () => console.log(`listening on http://localhost:${port}`));

process.once('SIGTERM', async () => {
  server.close();
  await dps.close();
});
