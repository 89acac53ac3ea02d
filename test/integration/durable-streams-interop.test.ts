// The official Durable Streams client (@durable-streams/client) and WebSocket clients on one channel: a JSON stream is
// the channel of its name, both ways, in order; and /v1/stream keeps the grants of everything else when auth is on.
import { DurableStream } from '@durable-streams/client';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpPublish, startTestServer, type TestServer, until, withServer } from '../support/env';
import { RawClient } from '../support/raw-client';

const ctx = withServer();

describe('a JSON stream and the channel of its name', () => {
  it('carry each other’s messages, in one order, to the official client and to WebSocket readers', async () => {
    const ch = 'interop.chat';
    const ws = await RawClient.connect(ctx.server.wsUrl);
    await ws.hello({ recipient: 'ws-reader', subs: ['interop.*'] });
    const stream = await DurableStream.create({ url: `${ctx.server.url}/v1/stream/${ch}`, contentType: 'application/json' });

    // Appended over Durable Streams: by the official client, and as a batch of two (an array is flattened one level).
    await stream.append(JSON.stringify({ n: 1 }));
    const batch = await fetch(stream.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[{"n":2},{"n":3}]' });
    expect(batch.status).toBe(204);
    // Published over HTTP and over a WebSocket.
    expect(
      (
        await httpPublish(ctx.server, {
          messages: [
            { ch, data: { n: 4 } },
            { ch, data: { n: 5 } },
          ],
        })
      ).status,
    ).toBe(200);
    const pub = await RawClient.connect(ctx.server.wsUrl);
    await pub.hello({ recipient: 'ws-publisher', subs: [] });
    pub.send({ op: 'pub', ch, data: { n: 6 }, ref: 'r6' });
    expect((await pub.waitFor((f) => f.ref === 'r6', 10_000, 'the puback')).op).toBe('puback');

    const msgs = () => ws.frames.filter((f) => f.op === 'msg');
    await until(() => msgs().length >= 6, 10_000, 'six messages on the WebSocket');
    expect(msgs().map((f) => [f.ch, f.data])).toEqual([1, 2, 3, 4, 5, 6].map((n) => [ch, { n }]));
    const ids = msgs().map((f) => f.id as number);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(6);

    // The official client reads all six from the start, in the channel's order.
    const all = await stream.stream({ live: false });
    expect(await all.json()).toEqual([1, 2, 3, 4, 5, 6].map((n) => ({ n })));
    const tail = all.offset;

    // And tails it live: the next publish over HTTP wakes its long-poll.
    const live = await stream.stream({ offset: tail, live: 'long-poll' });
    const seen: unknown[] = [];
    const stop = live.subscribeJson((batch) => {
      seen.push(...batch.items);
    });
    await httpPublish(ctx.server, { ch, data: { n: 7 } });
    await until(() => seen.length >= 1, 10_000, 'the long-poll woken');
    stop();
    live.cancel();
    expect(seen).toEqual([{ n: 7 }]);
    await until(() => msgs().length >= 7, 10_000, 'the seventh on the WebSocket');
    expect(msgs().map((f) => f.data)).toEqual([1, 2, 3, 4, 5, 6, 7].map((n) => ({ n })));
    ws.close();
    pub.close();
  });

  it('leaves a byte stream out of the channel of its name', async () => {
    const ws = await RawClient.connect(ctx.server.wsUrl);
    await ws.hello({ recipient: 'ws-bytes', subs: ['bytes.*'] });
    const stream = await DurableStream.create({ url: `${ctx.server.url}/v1/stream/bytes.log`, contentType: 'text/plain' });
    await stream.append('hello ');
    await httpPublish(ctx.server, { ch: 'bytes.log', data: 'published' });
    await stream.append('world');
    expect(await (await stream.stream({ live: false })).text()).toBe('hello world');
    await ws.waitFor((f) => f.op === 'msg', 10_000, 'the published message');
    expect(ws.frames.filter((f) => f.op === 'msg').map((f) => f.data)).toEqual(['published']);
    ws.close();
  });
});

describe('two nodes on one Redis', () => {
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    // Readers never look again on their own: only a wake-up from the other node can answer them.
    const env = { DPS_NAMESPACE: 'ds-nodes', DPS_STREAM_RECHECK: '600000', DPS_STREAM_LONG_POLL: '60000' };
    [a, b] = await Promise.all([startTestServer(ctx.redis.url, env), startTestServer(ctx.redis.url, env)]);
  });
  afterAll(() => Promise.all([a?.stop(), b?.stop()]));

  it('wake a long-poll on one node with an append or a publish on the other', async () => {
    const at = (s: TestServer) => `${s.url}/v1/stream/nodes.s`;
    expect((await fetch(at(a), { method: 'PUT', headers: { 'content-type': 'application/json' } })).status).toBe(201);
    const poll = async (offset: string) => {
      const r = await fetch(`${at(a)}?offset=${offset}&live=long-poll`);
      return { status: r.status, body: await r.text(), next: r.headers.get('stream-next-offset') as string };
    };
    const tail = (await fetch(at(a), { method: 'HEAD' })).headers.get('stream-next-offset') as string;
    const first = poll(tail);
    // The long-poll is waiting once A has read the stream for it: give it the time of one read, then append on B.
    await new Promise((r) => setTimeout(r, 200));
    expect((await fetch(at(b), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}' })).status).toBe(204);
    const one = await first;
    expect([one.status, one.body]).toEqual([200, '[{"n":1}]']);
    const second = poll(one.next);
    await new Promise((r) => setTimeout(r, 200));
    expect((await httpPublish(b, { ch: 'nodes.s', data: { n: 2 } })).status).toBe(200);
    const two = await second;
    expect([two.status, two.body]).toEqual([200, '[{"n":2}]']);
  });
});

describe('/v1/stream with auth on', () => {
  const SECRET = 'a-stream-secret-that-is-long-enough-for-hs256';
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(ctx.redis.url, { DPS_JWT_SECRET: SECRET, DPS_NAMESPACE: 'ds-auth' });
  });
  afterAll(() => server?.stop());

  const mint = (read: string[], pub: string[]) =>
    new SignJWT({ dps: { sub: read, pub } })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(SECRET));

  it('answers each operation by the token’s grants: 401 without one, 403 outside them', async () => {
    const url = (p: string) => `${server.url}/v1/stream/${p}`;
    const both = await mint(['team.*'], ['team.*']);
    const readOnly = await mint(['team.*'], []);
    const put = (p: string, token?: string) =>
      fetch(url(p), { method: 'PUT', headers: { 'content-type': 'text/plain', ...(token ? { authorization: `Bearer ${token}` } : {}) } });
    expect((await put('team.a')).status).toBe(401);
    expect((await put('team.a', 'not-a-jwt')).status).toBe(401);
    expect((await put('other.a', both)).status).toBe(403);
    expect((await put('team.a', readOnly)).status).toBe(403);
    expect((await put('team.a', both)).status).toBe(201);
    const post = (token: string) =>
      fetch(url('team.a'), { method: 'POST', headers: { 'content-type': 'text/plain', authorization: `Bearer ${token}` }, body: 'x' });
    expect((await post(readOnly)).status).toBe(403);
    expect((await post(both)).status).toBe(204);
    const get = (token?: string, p = 'team.a') => fetch(url(p), { headers: token ? { authorization: `Bearer ${token}` } : {} });
    expect((await get()).status).toBe(401);
    expect((await get(await mint(['other.*'], []))).status).toBe(403);
    const r = await get(readOnly);
    expect([r.status, await r.text()]).toEqual([200, 'x']);
    // A browser's EventSource cannot set a header: ?token= as on /v1/sse.
    const q = await fetch(`${url('team.a')}?token=${readOnly}`);
    expect([q.status, await q.text()]).toEqual([200, 'x']);
    expect((await fetch(url('team.a'), { method: 'DELETE', headers: { authorization: `Bearer ${readOnly}` } })).status).toBe(403);
    expect((await fetch(url('team.a'), { method: 'DELETE', headers: { authorization: `Bearer ${both}` } })).status).toBe(204);
  });
});
