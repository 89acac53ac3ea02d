// durablePubsub() inside an app's own HTTP server: beside its routes and its own WebSockets, two instances in one process.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type DurablePubsub, durablePubsub } from '@durable-pubsub/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { startTestRedis, type TestRedis, until } from '../support/env';
import { RawClient } from '../support/raw-client';

let redis: TestRedis;
let app: Server;
let base: string;
let eu: DurablePubsub;
let us: DurablePubsub;
const appSockets = new WebSocketServer({ noServer: true });

beforeAll(async () => {
  redis = await startTestRedis();
  [eu, us] = await Promise.all([
    durablePubsub({ redisUrl: redis.url, namespace: 'embed-eu', log: 'silent' }),
    durablePubsub({ redisUrl: redis.url, namespace: 'embed-us', log: 'silent', wsPath: '/us' }),
  ]);
  const dpsEu = eu;
  // The app's own server: its routes, then durable-pubsub's, then its 404; its own WebSocket path beside ours.
  app = createServer((req, res) => {
    if (req.url === '/hello') return void res.end('hi');
    if (req.url?.startsWith('/us/')) {
      req.url = req.url.slice(3);
      return us.handleRequest(req, res);
    }
    dpsEu.handleRequest(req, res, () => {
      res.writeHead(404).end('app 404');
    });
  });
  eu.attach(app, { path: '/ws' });
  us.attach(app); // its wsPath: /us
  app.on('upgrade', (req, socket, head) => {
    if (req.url === '/app-ws') appSockets.handleUpgrade(req, socket, head, (ws) => ws.send('app here'));
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  base = `127.0.0.1:${(app.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await Promise.all([eu?.close(), us?.close()]);
  app?.closeAllConnections();
  await new Promise((resolve) => app?.close(resolve));
  await redis?.cleanup();
});

async function post(path: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

describe('embedding durable-pubsub in an app', () => {
  it('serves its routes beside the app’s and hands the rest to next()', async () => {
    const texts = await Promise.all(['/hello', '/healthz', '/nope'].map(async (p) => (await fetch(`http://${base}${p}`)).text()));
    expect(texts).toEqual(['hi', '{"ok":true}', 'app 404']);
  });

  it('delivers what dps.publish and POST /v1/publish store, in order, to a client on the app’s port', async () => {
    const c = await RawClient.connect(`ws://${base}/ws`);
    await c.hello({ recipient: 'embed-1', subs: ['orders.*'] });
    await c.next('live');
    const a = await eu.publish('orders.eu', { n: 1 });
    const b = await post('/v1/publish', { ch: 'orders.us', data: { n: 2 } });
    const again = await eu.publish('orders.eu', { n: 3 }, { key: 'k1' });
    const dup = await eu.publish('orders.eu', { n: 3 }, { key: 'k1' });
    await c.waitFor((f) => f.id === again.id);
    expect([a, b, again, dup]).toEqual([{ id: 1 }, { status: 200, body: { id: 2 } }, { id: 3 }, { id: 3, dup: true }]);
    expect(c.frames.filter((f) => f.op === 'msg').map((f) => [f.id, f.ch, f.data])).toEqual([
      [1, 'orders.eu', { n: 1 }],
      [2, 'orders.us', { n: 2 }],
      [3, 'orders.eu', { n: 3 }],
    ]);
    c.close();
  });

  it('keeps two instances in one process apart: their own ids, messages, paths and routes', async () => {
    const c = await RawClient.connect(`ws://${base}/us`);
    await c.hello({ recipient: 'embed-2', subs: ['orders.*'] });
    await c.next('live');
    const x = await us.publish('orders.ny', 'x');
    await eu.publish('orders.eu', 'not for us');
    const y = await post('/us/v1/publish', { ch: 'orders.sf', data: 'y' });
    await c.waitFor((f) => f.id === y.body.id);
    expect([x.id, y.body.id, c.msgIds()]).toEqual([1, 2, [1, 2]]);
    c.close();
  });

  it('leaves the app’s own WebSocket path alone', async () => {
    const ws = new WebSocket(`ws://${base}/app-ws`);
    const first = await new Promise((resolve) => ws.once('message', (m) => resolve(String(m))));
    ws.close();
    expect(first).toBe('app here');
  });

  it('refuses a bad publish from the app with bad_request, storing nothing', async () => {
    const bad = await Promise.allSettled([eu.publish('', 1), eu.publish('ok', undefined as never)]);
    expect(bad.map((r) => r.status === 'rejected' && (r.reason as { code?: string }).code)).toEqual(['bad_request', 'bad_request']);
  });

  it('closes gracefully: its clients get 1001, the app keeps serving its own routes', async () => {
    const extra = await durablePubsub({ redisUrl: redis.url, namespace: 'embed-x', log: 'silent', wsPath: '/x' });
    extra.attach(app);
    const c = await RawClient.connect(`ws://${base}/x`);
    await c.hello({ recipient: 'embed-3', subs: ['a'] });
    await c.next('live');
    await extra.close();
    await until(() => c.closeCode !== null, 5000, 'the close');
    expect([c.closeCode, await (await fetch(`http://${base}/hello`)).text()]).toEqual([1001, 'hi']);
  });
});
