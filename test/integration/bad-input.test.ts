// Bad input gets the protocol's close codes and errors, and a well-behaved client alongside loses nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpPublish, startTestRedis, startTestServer, type TestRedis, type TestServer, until } from '../support/env';
import { RawClient } from '../support/raw-client';

let redis: TestRedis;
let server: TestServer;
let bystander: RawClient;
const published: number[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  server = await startTestServer(redis.url, { DPS_HELLO_TIMEOUT: '300', DPS_MAX_FRAME: '4096', DPS_MAX_BODY: '2048' });
  bystander = await RawClient.connect(server.wsUrl);
  await bystander.hello({ recipient: 'bystander', subs: ['feed'] });
  await bystander.next('live');
});
afterAll(async () => {
  await server?.stop();
  await redis?.cleanup();
});

async function publishOne(): Promise<void> {
  const r = await httpPublish(server, { ch: 'feed', data: published.length });
  published.push(r.body.id);
}

async function closeCodeAfter(...frames: (string | object | Buffer)[]): Promise<{ code: number; reason: string; frames: any[] }> {
  const c = await RawClient.connect(server.wsUrl);
  for (const f of frames) {
    if (Buffer.isBuffer(f)) c.sendRaw(f, true);
    else c.send(f);
  }
  const code = await c.closed();
  await publishOne();
  return { code, reason: c.closeReason, frames: c.frames };
}

const hello = { op: 'hello', v: 1, recipient: 'bad', subs: ['x'] };

describe('bad WebSocket input', () => {
  it('closes 4400 on a frame that is not JSON', async () => {
    expect((await closeCodeAfter('{not json')).code).toBe(4400);
  });
  it('closes 4400 on an op before hello, and on an unknown op before hello', async () => {
    expect((await closeCodeAfter({ op: 'ping' })).code).toBe(4400);
    expect((await closeCodeAfter({ op: 'dance' })).code).toBe(4400);
  });
  it('closes 4400 on a long unknown op (the close reason stays within 123 bytes) without hurting the server', async () => {
    const r = await closeCodeAfter({ op: 'x'.repeat(2000) });
    expect(r.code).toBe(4400);
    expect(Buffer.byteLength(r.reason)).toBeLessThanOrEqual(123);
    const c = await RawClient.connect(server.wsUrl);
    await c.hello({ recipient: 'long-op', subs: [] });
    c.send({ op: 'é'.repeat(1500), ref: 'r' }); // 3,000 bytes: under DPS_MAX_FRAME here
    const err = await c.next('error');
    expect([err.code, err.ref, err.message.length < 100]).toEqual(['bad_request', 'r', true]);
    expect(await c.closed(2000).catch(() => 'open')).toBe('open');
    c.close();
  });
  it('closes 4400 on a hello with missing or mistyped fields', async () => {
    expect((await closeCodeAfter({ op: 'hello', v: 1, subs: ['x'] })).code).toBe(4400);
    expect((await closeCodeAfter({ op: 'hello', v: 2, recipient: 'a', subs: [] })).code).toBe(4400);
    expect((await closeCodeAfter({ op: 'hello', v: 1, recipient: 'a', subs: 'x' })).code).toBe(4400);
    expect((await closeCodeAfter({ op: 'hello', v: 1, recipient: 'a', subs: [''] })).code).toBe(4400);
    expect((await closeCodeAfter({ op: 'hello', v: 1, recipient: 'a', subs: [], lastAckedId: -1 })).code).toBe(4400);
    expect((await closeCodeAfter({ op: 'hello', v: 1, recipient: 'a', subs: [], from: 'tail' })).code).toBe(4400);
  });
  it('closes 4400 on binary frames and on a second hello', async () => {
    expect((await closeCodeAfter(Buffer.from('{"op":"hello"}'))).code).toBe(4400);
    const c = await RawClient.connect(server.wsUrl);
    await c.hello({ recipient: 'twice', subs: [] });
    c.send(hello);
    expect(await c.closed()).toBe(4400);
    await publishOne();
  });
  it('answers an unknown op after hello with error bad_request and keeps the connection', async () => {
    const c = await RawClient.connect(server.wsUrl);
    await c.hello({ recipient: 'curious', subs: [] });
    c.send({ op: 'teleport', ref: 't1' });
    expect(await c.next('error')).toEqual({ op: 'error', code: 'bad_request', message: 'unknown op "teleport"', ref: 't1' });
    c.send({ op: 'ping' });
    await c.next('pong');
    expect(c.closeCode).toBe(null);
    c.close();
  });
  it('echoes a numeric ref unchanged in puback, subbed, unsubbed and error', async () => {
    const c = await RawClient.connect(server.wsUrl);
    await c.hello({ recipient: 'numeric-ref', subs: [] });
    await c.next('live');
    c.send({ op: 'pub', ch: 'refs', data: 1, ref: 1 });
    c.send({ op: 'sub', pattern: 'refs.*', ref: 2 });
    c.send({ op: 'unsub', pattern: 'refs.*', ref: 3.5 });
    c.send({ op: 'teleport', ref: 0 });
    await until(() => c.frames.length === 6, 5000, 'four answers');
    // Answers come as their work completes (a publish waits for Redis), each with its own ref.
    expect(
      c.frames
        .slice(2)
        .map((f) => [f.op, f.ref])
        .sort(),
    ).toEqual([
      ['error', 0],
      ['puback', 1],
      ['subbed', 2],
      ['unsubbed', 3.5],
    ]);
    expect(c.closeCode).toBe(null);
    c.close();
  });

  it('answers a pub with bad fields with error bad_request (same ref), then closes 4400', async () => {
    const r = await closeCodeAfter(hello, { op: 'pub', ch: 'x'.repeat(300), data: 1, ref: 'big' });
    expect(r.code).toBe(4400);
    expect(r.frames.find((f) => f.op === 'error')).toMatchObject({ code: 'bad_request', ref: 'big' });
  });
  it('closes 1009 on a frame above DPS_MAX_FRAME', async () => {
    expect((await closeCodeAfter(hello, { op: 'pub', ch: 'x', data: 'y'.repeat(5000) })).code).toBe(1009);
  });
  it('closes 4408 when no hello comes within DPS_HELLO_TIMEOUT', async () => {
    expect((await closeCodeAfter()).code).toBe(4408);
  });
  it('refuses upgrades on other paths', async () => {
    const c = new RawClient(server.wsUrl.replace('/ws', '/nope'));
    await expect(c.opened).rejects.toThrow(/404/);
  });
});

describe('bad HTTP input', () => {
  const post = (body: string) => httpPublish(server, body);
  it('answers 400 with a JSON error for bad bodies', async () => {
    for (const body of [
      '{nope',
      '[]',
      '{}',
      '{"ch":"","data":1}',
      '{"ch":"a"}',
      '{"ch":5,"data":1}',
      '{"messages":[]}',
      '{"messages":[{"ch":"a"}]}',
      '{"ch":"a","data":1,"key":7}',
    ]) {
      const r = await post(body);
      expect([body, r.status, r.body.error.code]).toEqual([body, 400, 'bad_request']);
      expect(typeof r.body.error.message).toBe('string');
    }
  });
  it('answers 413 for a body above DPS_MAX_BODY', async () => {
    const r = await post(JSON.stringify({ ch: 'a', data: 'x'.repeat(3000) }));
    expect([r.status, r.body.error.code]).toEqual([413, 'too_large']);
  });
  it('answers 404 and 405 with JSON errors', async () => {
    const r1 = await fetch(`${server.url}/v2/nothing`);
    expect([r1.status, ((await r1.json()) as any).error.code]).toEqual([404, 'not_found']);
    const r2 = await fetch(`${server.url}/v1/publish`);
    expect([r2.status, ((await r2.json()) as any).error.code]).toEqual([405, 'method_not_allowed']);
  });
  it('serves health and readiness', async () => {
    const h = await fetch(`${server.url}/healthz`);
    expect([h.status, await h.json()]).toEqual([200, { ok: true }]);
    const r = await fetch(`${server.url}/readyz`);
    expect([r.status, await r.json()]).toEqual([200, { ok: true, redis: 'up' }]);
  });
});

describe('the bystander', () => {
  it('received every message published while the bad clients came and went, and is still open', async () => {
    await publishOne();
    await bystander.waitFor((f) => f.id === published[published.length - 1]);
    expect(bystander.msgIds()).toEqual(published);
    expect(published.length).toBe(16); // one per bad connection above, and this one
    expect(bystander.closeCode).toBe(null);
  });
});
