// GET /v1/poll: the catch-up at once and exactly, `next` chaining, waking on a publish, timeouts, stored positions, epochs, the 1 MiB page, gaps, grants.
import { keysFor } from '@durable-pubsub/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, startTestServer, type TestRedis, type TestServer, until } from '../support/env';
import { mintToken } from '../support/http-read';

const SECRET = 'poll-secret-that-is-long-enough-0123456789';
let redis: TestRedis;
let open: TestServer;
/** 3 messages per channel at most */
let short: TestServer;
let secured: TestServer;
let epoch: string;

beforeAll(async () => {
  redis = await startTestRedis();
  [open, short, secured] = await Promise.all([
    startTestServer(redis.url, { DPS_NAMESPACE: 'poll' }),
    startTestServer(redis.url, { DPS_NAMESPACE: 'poll-short', DPS_RETENTION_MAX_LEN: '3' }),
    startTestServer(redis.url, { DPS_NAMESPACE: 'poll-auth', DPS_JWT_SECRET: SECRET }),
  ]);
  epoch = ((await (await fetch(`${open.url}/v1/history?ch=any`)).json()) as { epoch: string }).epoch;
});
afterAll(async () => {
  await Promise.all([open?.stop(), short?.stop(), secured?.stop()]);
  await redis?.cleanup();
});

interface PollQuery {
  recipient: string;
  subs: string[];
  after?: string;
  timeout?: string | number;
  from?: 'earliest' | 'head';
  token?: string;
}

interface PollAnswer {
  status: number;
  body: any;
  /** bytes of the answer */
  size: number;
  ms: number;
}

async function poll(q: PollQuery, server: TestServer = open, headers: Record<string, string> = {}): Promise<PollAnswer> {
  const u = new URL('/v1/poll', server.url);
  u.searchParams.set('recipient', q.recipient);
  for (const p of q.subs) u.searchParams.append('subs', p);
  if (q.after !== undefined) u.searchParams.set('after', q.after);
  if (q.timeout !== undefined) u.searchParams.set('timeout', String(q.timeout));
  if (q.from) u.searchParams.set('from', q.from);
  if (q.token) u.searchParams.set('token', q.token);
  const t0 = Date.now();
  const res = await fetch(u, { headers });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text), size: Buffer.byteLength(text), ms: Date.now() - t0 };
}

/** Publishes one message per channel given (in batches of at most 500); returns their ids. */
async function publish(
  channels: string[],
  server: TestServer = open,
  data: (i: number) => unknown = (i) => i,
  headers = {},
): Promise<number[]> {
  const ids: number[] = [];
  for (let at = 0; at < channels.length; at += 500) {
    const res = await fetch(`${server.url}/v1/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ messages: channels.slice(at, at + 500).map((ch, i) => ({ ch, data: data(at + i) })) }),
    });
    expect(res.status).toBe(200);
    ids.push(...((await res.json()) as { ids: number[] }).ids);
  }
  return ids;
}

const wanted = (ids: number[], channels: string[], prefix: string) => ids.filter((_, i) => (channels[i] as string).startsWith(prefix));
const msgIds = (a: PollAnswer) => (a.body.msgs as { id: number }[]).map((m) => m.id);

async function storedPosition(name: string): Promise<number | undefined> {
  const body = (await (await fetch(`${open.url}/v1/recipients`)).json()) as { recipients: { name: string; lastAckedId: number }[] };
  return body.recipients.find((r) => r.name === name)?.lastAckedId;
}

async function connectionsOf(name: string): Promise<number> {
  const body = (await (await fetch(`${open.url}/v1/recipients`)).json()) as { recipients: { name: string; connections: number }[] };
  return body.recipients.find((r) => r.name === name)?.connections ?? 0;
}

describe('GET /v1/poll', () => {
  it('returns the catch-up at once and exactly: every message on its patterns, in order, and next', async () => {
    const channels = Array.from({ length: 50 }, (_, i) => ['pc.a', 'pc.b', 'other'][i % 3] as string);
    channels.push('pc.a');
    const ids = await publish(channels, open, (i) => ({ i, text: `m${i}` }));
    const r = await poll({ recipient: 'catch-up', subs: ['pc.*'], from: 'earliest', timeout: 30 });
    const expected = wanted(ids, channels, 'pc.');
    expect([r.status, msgIds(r), r.body.gaps, r.body.next, 'epochChanged' in r.body]).toEqual([
      200,
      expected,
      [],
      `${epoch}:${ids[ids.length - 1]}`,
      false,
    ]);
    expect(r.body.msgs[0]).toEqual({ op: 'msg', id: ids[0], ch: 'pc.a', data: { i: 0, text: 'm0' }, ts: expect.any(Number) });
    expect(r.ms).toBeLessThan(30_000);
  });

  it('covers every message exactly once and in order when each poll passes the last answer’s next as after', async () => {
    const first = await poll({ recipient: 'chain', subs: ['ch.*'], timeout: 0 });
    expect([first.status, first.body.msgs, first.body.gaps]).toEqual([200, [], []]);
    let next = first.body.next as string;
    const published: number[] = [];
    const received: number[] = [];
    let head = 0;
    const publishRound = async (channels: string[]) => {
      const ids = await publish(channels);
      head = ids[ids.length - 1] as number;
      published.push(...wanted(ids, channels, 'ch.'));
    };
    let answers = 0;
    for (let round = 0; round < 6; round++) {
      const channels = Array.from({ length: 5 + round * 7 }, (_, i) => (i % 4 === 3 ? 'nope' : `ch.${i % 2}`));
      let answer: PollAnswer;
      if (round % 2) {
        // Published while the poll waits: it wakes with (at least) the first of them; the rest come next round.
        const waiting = poll({ recipient: 'chain', subs: ['ch.*'], after: next, timeout: 20 });
        await until(async () => (await connectionsOf('chain')) === 1, 10_000, 'the poll to wait');
        await publishRound(channels);
        answer = await waiting;
      } else {
        await publishRound(channels);
        answer = await poll({ recipient: 'chain', subs: ['ch.*'], after: next, timeout: 20 });
      }
      expect(answer.status).toBe(200);
      received.push(...msgIds(answer));
      next = answer.body.next;
      answers++;
    }
    // Whatever is left, until a poll finds nothing.
    for (;;) {
      const answer = await poll({ recipient: 'chain', subs: ['ch.*'], after: next, timeout: 0 });
      next = answer.body.next;
      answers++;
      if (!answer.body.msgs.length) break;
      received.push(...msgIds(answer));
    }
    expect(received).toEqual(published);
    // The last answer covered everything up to the head, matching or not.
    expect(next).toBe(`${epoch}:${head}`);
    expect(answers).toBeGreaterThanOrEqual(7);
  });

  it('waits while there is nothing, and wakes with a message published meanwhile, well before its timeout', async () => {
    const idle = await poll({ recipient: 'sleeper', subs: ['sl.*'], timeout: 0 });
    const waiting = poll({ recipient: 'sleeper', subs: ['sl.*'], after: idle.body.next, timeout: 20 });
    await until(async () => (await connectionsOf('sleeper')) === 1, 10_000, 'the poll to wait');
    const publishedAt = Date.now();
    const [other, id] = await publish(['elsewhere', 'sl.x']);
    const r = await waiting;
    const woke = Date.now() - publishedAt;
    process.stdout.write(`long-poll woke ${woke} ms after the publish (its timeout: 20 s)\n`);
    expect([r.status, msgIds(r), r.body.gaps, r.body.next]).toEqual([200, [id], [], `${epoch}:${id}`]);
    expect(other).toBe((id as number) - 1);
    expect(woke).toBeLessThan(20_000);
  });

  it('answers at once with timeout=0 and nothing there: empty lists, next at the head it covered', async () => {
    const first = await poll({ recipient: 'instant', subs: ['in.*'], timeout: 0 });
    const [head] = (await publish(['not-in'])) as [number];
    const r = await poll({ recipient: 'instant', subs: ['in.*'], after: first.body.next, timeout: 0 });
    expect([r.status, r.body]).toEqual([200, { msgs: [], gaps: [], next: `${epoch}:${head}` }]);
  });

  it('stores `after` as the recipient’s position; a poll without it resumes there', async () => {
    await poll({ recipient: 'storer', subs: ['st.*'], timeout: 0 });
    const ids = await publish(Array.from({ length: 6 }, (_, i) => `st.${i}`));
    const r = await poll({ recipient: 'storer', subs: ['st.*'], after: `${epoch}:${ids[2]}`, timeout: 0 });
    expect([msgIds(r), await storedPosition('storer')]).toEqual([ids.slice(3), ids[2]]);
    // The answer itself is not an ack: without `after`, the stored position again.
    const again = await poll({ recipient: 'storer', subs: ['st.*'], timeout: 0 });
    expect(msgIds(again)).toEqual(ids.slice(3));
    const done = await poll({ recipient: 'storer', subs: ['st.*'], after: again.body.next, timeout: 0 });
    expect([done.body.msgs, await storedPosition('storer')]).toEqual([[], ids[5]]);
    // An older `after` is served from where it says; the stored position does not move back.
    const older = await poll({ recipient: 'storer', subs: ['st.*'], after: `${epoch}:${ids[0]}`, timeout: 0 });
    expect([msgIds(older), await storedPosition('storer')]).toEqual([ids.slice(1), ids[5]]);
  });

  it('answers an `after` of a foreign epoch with epochChanged and the replay from the earliest retained message', async () => {
    const channels = ['fp.a', 'zz', 'fp.b', 'fp.c'];
    const ids = await publish(channels);
    const r = await poll({ recipient: 'foreigner', subs: ['fp.*'], after: 'someOldEpoch:7', timeout: 0 });
    expect([r.status, r.body]).toEqual([200, { msgs: expect.any(Array), gaps: [], next: `${epoch}:${ids[3]}`, epochChanged: true }]);
    expect(msgIds(r)).toEqual(wanted(ids, channels, 'fp.'));
  });

  it('pages a backlog over 1 MiB across several polls, exactly', async () => {
    const text = 'x'.repeat(1000);
    const channels = Array.from({ length: 2600 }, (_, i) => (i % 5 === 4 ? 'small' : `big.${i % 3}`));
    const ids = await publish(channels, open, (i) => ({ i, text }));
    const expected = wanted(ids, channels, 'big.');
    const received: number[] = [];
    const sizes: number[] = [];
    let after: string | undefined;
    for (;;) {
      const r = await poll({ recipient: 'pager', subs: ['big.*'], from: 'earliest', after, timeout: 0 });
      expect(r.status).toBe(200);
      if (!r.body.msgs.length) break;
      const got = msgIds(r);
      received.push(...got);
      sizes.push(r.size);
      // An answer cut short says where it stopped: its last message.
      if (received.length < expected.length) expect(r.body.next).toBe(`${epoch}:${got[got.length - 1]}`);
      after = r.body.next;
      if (sizes.length > 20) break;
    }
    process.stdout.write(`1 MiB pages: ${sizes.length} answers of ${sizes.map((s) => (s / 1048576).toFixed(2)).join(', ')} MiB\n`);
    expect(received).toEqual(expected);
    expect(sizes.length).toBeGreaterThanOrEqual(2);
    // ~1 MiB of messages each (the cap is checked between replay pages).
    for (const s of sizes) expect(s).toBeLessThan(2.5 * 1048576);
  });

  it('reports what retention removed in `gaps`', async () => {
    const first = await poll({ recipient: 'gappy', subs: ['g.*'], timeout: 0 }, short);
    const from = Number((first.body.next as string).split(':')[1]);
    const a = await publish(Array(7).fill('g.a'), short);
    const r = await poll({ recipient: 'gappy', subs: ['g.*'], after: first.body.next, timeout: 0 }, short);
    expect([r.status, msgIds(r), r.body.gaps]).toEqual([
      200,
      a.slice(4),
      [{ op: 'gap', ch: 'g.a', after: from, upTo: a[3], reason: 'retention' }],
    ]);
  });

  it('answers after its timeout with empty lists when nothing comes', async () => {
    const first = await poll({ recipient: 'patient', subs: ['pt.*'], timeout: 0 });
    const r = await poll({ recipient: 'patient', subs: ['pt.*'], after: first.body.next, timeout: 1 });
    process.stdout.write(`an empty long-poll with timeout=1 answered after ${r.ms} ms\n`);
    expect([r.status, r.body]).toEqual([200, { msgs: [], gaps: [], next: first.body.next }]);
  });

  it('checks every replayed frame: a broken one is named in gaps; a valid one in another JSON layout is a msg', async () => {
    const keys = keysFor('poll');
    const first = await poll({ recipient: 'checker', subs: ['iv.*'], timeout: 0 });
    const [good] = (await publish(['iv.a'])) as [number];
    const bad = await redis.client.incr(keys.seq);
    await redis.client.zadd(keys.channel('iv.a'), bad, `{"op":"msg","id":${bad},"ch":"iv.a","data":{oops`);
    const reordered = await redis.client.incr(keys.seq);
    await redis.client.zadd(keys.channel('iv.a'), reordered, `{"id":${reordered},"op":"msg","ch":"iv.a","data":7,"ts":1}`);
    const [last] = (await publish(['iv.a'])) as [number];
    const r = await poll({ recipient: 'checker', subs: ['iv.*'], after: first.body.next, timeout: 0 });
    expect([msgIds(r), r.body.gaps]).toEqual([
      [good, reordered, last],
      [{ op: 'gap', ch: 'iv.a', after: bad - 1, upTo: bad, reason: 'invalid' }],
    ]);
  });

  it('refuses a bad timeout with 400, and takes 0 to 60', async () => {
    const bad = await Promise.all(
      ['-1', '61', 'abc', '', '1e9', 'Infinity'].map((timeout) => poll({ recipient: 'tm', subs: ['tm.*'], timeout })),
    );
    expect(bad.map((r) => [r.status, r.body.error?.code])).toEqual(Array(6).fill([400, 'bad_request']));
    const [id] = (await publish(['tm.a'])) as [number];
    const ok = await poll({ recipient: 'tm', subs: ['tm.*'], timeout: 60, from: 'earliest' });
    expect([ok.status, msgIds(ok)]).toEqual([200, [id]]);
  });

  it('with auth on: the token by header or ?token=, only granted channels, 401 without a valid one', async () => {
    const token = await mintToken(SECRET, 'reader', ['ok.*']);
    const channels = ['ok.a', 'no.a', 'ok.b'];
    const ids = await publish(channels, secured, (i) => i, { authorization: `Bearer ${token}` });
    const q = { recipient: 'reader', subs: ['*'], from: 'earliest' as const, timeout: 0 };
    const byHeader = await poll(q, secured, { authorization: `Bearer ${token}` });
    const byQuery = await poll({ ...q, token, after: `${byHeader.body.next.split(':')[0]}:0` }, secured);
    const none = await poll(q, secured);
    const wrong = await poll({ ...q, token: `${token}x` }, secured);
    expect([byHeader.status, msgIds(byHeader), byQuery.status, msgIds(byQuery)]).toEqual([200, [ids[0], ids[2]], 200, [ids[0], ids[2]]]);
    expect([none.status, none.body.error.code, wrong.status, wrong.body.error.code]).toEqual([401, 'unauthorized', 401, 'unauthorized']);
  });
});
