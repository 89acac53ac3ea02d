// The official Durable Streams client (@durable-streams/client) and WebSocket clients on one channel: a JSON stream is
// the channel of its name, both ways, in order; and /v1/stream keeps the grants of everything else when auth is on.

import { keysFor } from '@durable-pubsub/server';
import { Scripts } from '@durable-pubsub/server/src/redis/commands';
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

describe('an append to a JSON stream is stored on its channel in the same step (dsappend-7.lua)', () => {
  /** The channel's log straight from Redis: [id, frame] per message. */
  const log = async (ch: string) => {
    const flat = (await ctx.redis.client.zrange(keysFor(ctx.server.config.namespace).channel(ch), '0', '-1', 'WITHSCORES')) as string[];
    const out: [number, { op: string; id: number; ch: string; data: unknown }][] = [];
    for (let i = 0; i < flat.length; i += 2) out.push([Number(flat[i + 1]), JSON.parse(flat[i] as string)]);
    return out;
  };
  const post = (ch: string, body: string) =>
    fetch(`${ctx.server.url}/v1/stream/${ch}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

  it('is in the channel log when the POST is answered, with the ids the WebSocket reader gets', async () => {
    const ch = 'atomic.a';
    const ws = await RawClient.connect(ctx.server.wsUrl);
    await ws.hello({ recipient: 'atomic-reader', subs: [ch] });
    await ws.next('live');
    expect(
      (await fetch(`${ctx.server.url}/v1/stream/${ch}`, { method: 'PUT', headers: { 'content-type': 'application/json' } })).status,
    ).toBe(201);
    expect((await post(ch, '[{"n":1},{"n":2}]')).status).toBe(204);
    // Read right after the answer, nothing awaited in between: the append and the channel store are one script.
    const stored = await log(ch);
    expect(stored.map(([, f]) => [f.op, f.ch, f.data])).toEqual([
      ['msg', ch, { n: 1 }],
      ['msg', ch, { n: 2 }],
    ]);
    const [id1, id2] = stored.map(([id]) => id) as [number, number];
    expect(id2).toBe(id1 + 1);
    expect(stored.map(([, f]) => f.id)).toEqual([id1, id2]);
    expect(Number(await ctx.redis.client.zscore(keysFor(ctx.server.config.namespace).index, ch))).toBe(id2);
    await until(() => ws.msgIds().length >= 2, 10_000, 'both appends on the WebSocket');
    expect(ws.frames.filter((f) => f.op === 'msg').map((f) => [f.id, f.data])).toEqual([
      [id1, { n: 1 }],
      [id2, { n: 2 }],
    ]);
    // A publish on the channel is appended to the stream once, and the append is not stored on the channel twice.
    expect((await httpPublish(ctx.server, { ch, data: { n: 3 } })).status).toBe(200);
    expect((await log(ch)).map(([, f]) => f.data)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    const read = await fetch(`${ctx.server.url}/v1/stream/${ch}?offset=-1`);
    expect(await read.json()).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    ws.close();
  });

  it('reaches a resuming WebSocket client when appended while the live subscribers are down', async () => {
    const ch = 'atomic.resume';
    const first = await RawClient.connect(ctx.server.wsUrl);
    const w = await first.hello({ recipient: 'atomic-resume', subs: [ch] });
    await first.next('live');
    expect(
      (await fetch(`${ctx.server.url}/v1/stream/${ch}`, { method: 'PUT', headers: { 'content-type': 'application/json' } })).status,
    ).toBe(201);
    expect((await post(ch, '{"n":1}')).status).toBe(204);
    await first.waitFor((f) => f.op === 'msg', 10_000, 'the first append');
    const [seen] = first.msgIds() as [number];
    first.close();
    await first.closed();
    // Every subscriber connection of the server dropped (its live bridge and its stream wake-ups): append meanwhile.
    await ctx.redis.client.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    expect((await post(ch, '[{"n":2},{"n":3}]')).status).toBe(204);
    const ids = (await log(ch)).map(([id]) => id);
    expect(ids).toEqual([seen, seen + 1, seen + 2]);
    const back = await RawClient.connect(ctx.server.wsUrl);
    await back.hello({ recipient: 'atomic-resume', subs: [ch], epoch: w.epoch as string, lastAckedId: seen });
    await until(() => back.msgIds().length >= 2, 10_000, 'the two appends replayed');
    expect(back.frames.filter((f) => f.op === 'msg').map((f) => [f.id, f.data])).toEqual([
      [seen + 1, { n: 2 }],
      [seen + 2, { n: 3 }],
    ]);
    back.close();
  });

  it('FCALL dps_publish appends to the JSON stream of its channel too, in the same call', async () => {
    const ch = 'atomic.fcall';
    const ns = ctx.server.config.namespace;
    expect(
      (await fetch(`${ctx.server.url}/v1/stream/${ch}`, { method: 'PUT', headers: { 'content-type': 'application/json' } })).status,
    ).toBe(201);
    const [id, dup] = (await ctx.redis.client.call('FCALL', 'dps_publish', '1', `dps:{${ns}}`, ch, '{"n":1}')) as [number, number];
    expect(dup).toBe(0);
    expect((await log(ch)).map(([i, f]) => [i, f.id, f.data])).toEqual([[id, id, { n: 1 }]]);
    expect(await (await fetch(`${ctx.server.url}/v1/stream/${ch}?offset=-1`)).json()).toEqual([{ n: 1 }]);
    // A repeated key stores nothing, on the channel or the stream.
    await ctx.redis.client.call('FCALL', 'dps_publish', '1', `dps:{${ns}}`, ch, '{"n":2}', 'k');
    await ctx.redis.client.call('FCALL', 'dps_publish', '1', `dps:{${ns}}`, ch, '{"n":3}', 'k');
    expect(await (await fetch(`${ctx.server.url}/v1/stream/${ch}?offset=-1`)).json()).toEqual([{ n: 1 }, { n: 2 }]);
    expect((await log(ch)).map(([, f]) => f.data)).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('needs no server after the script: the stream and the channel hold the same messages, a byte stream stays apart', async () => {
    // The scripts alone, as a server that dies right after its call leaves Redis.
    const keys = keysFor('ds-script');
    const scripts = new Scripts(ctx.redis.client, keys);
    const json = { ct: 'application/json', closed: false };
    expect((await scripts.dscreate({ path: 'sc.j', config: json, entries: [] })).status).toBe('created');
    const r = await scripts.dsappend({
      path: 'sc.j',
      ct: 'application/json',
      close: false,
      entries: ['{"n":1}', '"two"'].map((t) => Buffer.from(t)),
      maxLen: 10,
    });
    expect(r.status).toBe('ok');
    expect(r.channel?.first).toBe(1);
    const frames = (await ctx.redis.client.zrange(keys.channel('sc.j'), '0', '-1')).map((f) => JSON.parse(f));
    expect(frames.map((f) => [f.op, f.id, f.ch, f.data])).toEqual([
      ['msg', 1, 'sc.j', { n: 1 }],
      ['msg', 2, 'sc.j', 'two'],
    ]);
    expect(await ctx.redis.client.get(keys.seq)).toBe('2');
    expect(await ctx.redis.client.get(keys.epoch)).toBe(r.channel?.epoch);
    // Not a channel (over 256 bytes) or not JSON: the stream alone.
    const long = `sc.${'x'.repeat(300)}`;
    await scripts.dscreate({ path: long, config: json, entries: [] });
    expect(
      (await scripts.dsappend({ path: long, ct: 'application/json', close: false, entries: [Buffer.from('1')], maxLen: 10 })).channel,
    ).toBeUndefined();
    await scripts.dscreate({ path: 'sc.t', config: { ct: 'text/plain', closed: false }, entries: [] });
    expect(
      (await scripts.dsappend({ path: 'sc.t', ct: 'text/plain', close: false, entries: [Buffer.from('x')], maxLen: 10 })).channel,
    ).toBeUndefined();
    expect(await ctx.redis.client.exists(keys.channel('sc.t'), keys.channel(long))).toBe(0);
    expect(await ctx.redis.client.get(keys.seq)).toBe('2');
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
