// GET /v1/history: a channel's retained messages paged both ways, its limits and bad input, its grants, and invalid frames.
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpPublish, startTestRedis, startTestServer, type TestRedis, type TestServer } from '../support/env';

const SECRET = 'history-secret-that-is-long-enough-0123';
let redis: TestRedis;
let open: TestServer;
let secured: TestServer;

beforeAll(async () => {
  redis = await startTestRedis();
  [open, secured] = await Promise.all([
    startTestServer(redis.url, { DPS_NAMESPACE: 'hist' }),
    startTestServer(redis.url, { DPS_NAMESPACE: 'hist-auth', DPS_JWT_SECRET: SECRET }),
  ]);
});
afterAll(async () => {
  await Promise.all([open?.stop(), secured?.stop()]);
  await redis?.cleanup();
});

async function get(server: TestServer, query: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.url}/v1/history?${query}`, { headers });
  return { status: res.status, body: (await res.json()) as any };
}

const ids = (body: { msgs: { id: number }[] }) => body.msgs.map((m) => m.id);
const range = (from: number, to: number) => Array.from({ length: Math.abs(to - from) + 1 }, (_, i) => (from <= to ? from + i : from - i));

describe('GET /v1/history', () => {
  it('pages a channel oldest first after an id and newest first before one, saying whether more lie beyond', async () => {
    await httpPublish(open, { messages: Array.from({ length: 250 }, (_, i) => ({ ch: i % 2 ? 'h.a' : 'h.b', data: i })) });
    const newest = await get(open, 'ch=h.a');
    const first = await get(open, 'ch=h.a&after=0&limit=10');
    const next = await get(open, `ch=h.a&after=${first.body.msgs[9].id}&limit=10`);
    const older = await get(open, 'ch=h.a&before=21&limit=1000');
    const last = await get(open, 'ch=h.a&after=248');
    expect([newest.status, ids(newest.body), newest.body.more]).toEqual([200, range(250, 52).filter((id) => id % 2 === 0), true]);
    expect([ids(first.body), first.body.more, ids(next.body)]).toEqual([
      range(2, 20).filter((id) => id % 2 === 0),
      true,
      range(22, 40).filter((id) => id % 2 === 0),
    ]);
    expect([ids(older.body), older.body.more, ids(last.body), last.body.more]).toEqual([
      [20, 18, 16, 14, 12, 10, 8, 6, 4, 2],
      false,
      [250],
      false,
    ]);
    expect(first.body.msgs[0]).toEqual({ op: 'msg', id: 2, ch: 'h.a', data: 1, ts: first.body.msgs[0].ts });
    expect(first.body.epoch).toBe(open.store.epoch);
  });

  it('refuses bad input with 400: no channel, both bounds, a bad id, a limit over 1000', async () => {
    const answers = await Promise.all(
      [
        '',
        'ch=',
        'ch=h.a&after=1&before=5',
        'ch=h.a&after=-1',
        'ch=h.a&before=1e3',
        'ch=h.a&limit=1001',
        'ch=h.a&limit=0',
        `ch=${'x'.repeat(300)}`,
      ].map((q) => get(open, q)),
    );
    expect(answers.map((a) => [a.status, a.body.error.code])).toEqual(Array(8).fill([400, 'bad_request']));
  });

  it('needs a token that may read the channel, by header or ?token=', async () => {
    const key = new TextEncoder().encode(SECRET);
    const mint = (sub: string[]) =>
      new SignJWT({ dps: { sub, pub: ['*'] } }).setProtectedHeader({ alg: 'HS256' }).setSubject('u').setExpirationTime('1h').sign(key);
    const reader = await mint(['h.*']);
    await fetch(`${secured.url}/v1/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${reader}` },
      body: JSON.stringify({ ch: 'h.s', data: 1 }),
    });
    const none = await get(secured, 'ch=h.s');
    const other = await get(secured, 'ch=h.s', { authorization: `Bearer ${await mint(['x.*'])}` });
    const header = await get(secured, 'ch=h.s', { authorization: `Bearer ${reader}` });
    const query = await get(secured, `ch=h.s&token=${reader}`);
    expect([none.status, other.status, header.status, ids(header.body), query.status, ids(query.body)]).toEqual([
      401,
      403,
      200,
      [1],
      200,
      [1],
    ]);
  });

  it('leaves out a stored frame that is not a msg frame and names it in gaps, never sending it broken', async () => {
    const { id } = (await httpPublish(open, { ch: 'h.bad', data: 'good' })).body;
    const bad = await redis.client.incr('dps:{hist}:seq');
    await redis.client.zadd('dps:{hist}:ch:h.bad', bad, `{"op":"msg","id":${bad},"ch":"h.bad","data":{oops`);
    const r = await get(open, 'ch=h.bad&after=0');
    expect([r.status, ids(r.body), r.body.gaps]).toEqual([200, [id], [{ after: bad - 1, upTo: bad, reason: 'invalid' }]]);
  });
});
