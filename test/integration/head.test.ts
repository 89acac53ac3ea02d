// Load-then-resume: GET /v1/head and dps.head() give {epoch, id}; an SDK client given that position gets exactly what came after it.
import { createClient, type Message, memoryStorage } from '@durable-pubsub/client-sdk';
import { type DurablePubsub, durablePubsub } from '@durable-pubsub/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestRedis, type TestRedis, until } from '../support/env';
import { mintToken } from '../support/http-read';

const SECRET = 'a-secret-of-the-head-test-at-least-32-bytes-long';
let redis: TestRedis;
let open: DurablePubsub;
let secured: DurablePubsub;
let openUrl: string;
let securedUrl: string;

beforeAll(async () => {
  redis = await startTestRedis();
  open = await durablePubsub({ redisUrl: redis.url, namespace: 'head-open', log: 'silent' });
  secured = await durablePubsub({ redisUrl: redis.url, namespace: 'head-auth', jwtSecret: SECRET, log: 'silent' });
  openUrl = (await open.listen()).url;
  securedUrl = (await secured.listen()).url;
});
afterAll(async () => {
  await Promise.all([open?.close(), secured?.close()]);
  await redis?.cleanup();
});

const head = async (url: string, headers: Record<string, string> = {}) => {
  const res = await fetch(`${url}/v1/head`, { headers });
  return { status: res.status, body: await res.json() };
};

describe('GET /v1/head and dps.head()', () => {
  it('answer the epoch and the newest id, before and after publishes', async () => {
    const epoch = open.store.epoch;
    expect(await head(openUrl)).toEqual({ status: 200, body: { epoch, id: 0 } });
    expect(await open.head()).toEqual({ epoch, id: 0 });
    const { id } = await open.publish('h.a', { n: 1 });
    await open.publish('h.b', { n: 2 });
    expect(await head(openUrl)).toEqual({ status: 200, body: { epoch, id: id + 1 } });
    expect(await open.head()).toEqual({ epoch, id: id + 1 });
  });

  it('need a valid token when auth is on (any grant: the head names no channel)', async () => {
    const none = await head(securedUrl);
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('unauthorized');
    expect((await head(securedUrl, { authorization: 'Bearer not-a-jwt' })).status).toBe(401);
    const token = await mintToken(SECRET, 'alice', ['orders.*']);
    expect(await head(securedUrl, { authorization: `Bearer ${token}` })).toEqual({
      status: 200,
      body: { epoch: secured.store.epoch, id: 0 },
    });
    expect((await head(`${securedUrl}`, {})).status).toBe(401);
    const q = await fetch(`${securedUrl}/v1/head?token=${token}`);
    expect(q.status).toBe(200);
  });
});

describe('the SDK from a position (load-then-resume)', () => {
  it('a client created with the head taken before the state was loaded gets exactly what was published after it', async () => {
    const before = [await open.publish('lr.x', { v: 1 }), await open.publish('lr.y', { v: 1 })];
    const position = await open.head(); // the page takes the head, then loads its state…
    const after = [await open.publish('lr.x', { v: 2 }), await open.publish('lr.y', { v: 2 })]; // …changes land meanwhile…
    const seen: Pick<Message, 'id' | 'ch' | 'data'>[] = [];
    // …and a recipient never seen (a new page) resumes from the head it took, not from `from: head`.
    const client = createClient({
      url: openUrl.replace('http', 'ws') + '/ws',
      recipient: 'lr-page',
      position,
      storage: memoryStorage(),
      WebSocket,
    });
    client.subscribe('lr.*', ({ id, ch, data }) => void seen.push({ id, ch, data }));
    try {
      await until(() => client.state === 'live', 10_000, 'live');
      const live = await open.publish('lr.x', { v: 3 });
      await until(() => seen.length >= 3, 10_000, 'three messages');
      expect(seen).toEqual([
        { id: after[0]?.id, ch: 'lr.x', data: { v: 2 } },
        { id: after[1]?.id, ch: 'lr.y', data: { v: 2 } },
        { id: live.id, ch: 'lr.x', data: { v: 3 } },
      ]);
      expect(before.every((b) => b.id <= position.id)).toBe(true);
      expect(client.lastAckedId).toBe(live.id);
    } finally {
      client.close();
    }
  });
});
