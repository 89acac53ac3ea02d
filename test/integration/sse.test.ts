// GET /v1/sse read by a client we did not write (the `eventsource` package) and by a raw reader: live, catch-up, resume by Last-Event-ID, the stored position, epochs, gaps, grants.
import { freePort } from '@durable-pubsub/server';
import { EventSource } from 'eventsource';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, startTestServer, type TestRedis, type TestServer, until } from '../support/env';
import { mintToken, pick, publishBatch, type ReadQuery, recipientEntry, sseUrl } from '../support/http-read';
import { SseReader } from '../support/sse-reader';

const SECRET = 'sse-secret-that-is-long-enough-0123456789';
let redis: TestRedis;
/** auth off, defaults */
let open: TestServer;
/** 3 messages per channel at most, a keep-alive every 100 ms */
let tuned: TestServer;
/** auth on */
let secured: TestServer;

beforeAll(async () => {
  redis = await startTestRedis();
  [open, tuned, secured] = await Promise.all([
    startTestServer(redis.url, { DPS_NAMESPACE: 'sse' }),
    startTestServer(redis.url, { DPS_NAMESPACE: 'sse-tuned', DPS_RETENTION_MAX_LEN: '3', DPS_SSE_KEEPALIVE: '100' }),
    startTestServer(redis.url, { DPS_NAMESPACE: 'sse-auth', DPS_JWT_SECRET: SECRET }),
  ]);
});
afterAll(async () => {
  await Promise.all([open?.stop(), tuned?.stop(), secured?.stop()]);
  await redis?.cleanup();
});

interface Heard {
  type: string;
  /** MessageEvent.lastEventId as the package reports it */
  lastEventId: string;
  data: any;
}

/** The `eventsource` package on `url`, recording every event of ours, its errors, and each request's Last-Event-ID. */
function listen(url: string, headers: Record<string, string> = {}) {
  const heard: Heard[] = [];
  const requests: (string | undefined)[] = [];
  const errors: { code?: number; message?: string }[] = [];
  const es = new EventSource(url, {
    fetch: (input, init) => {
      const h = (init?.headers ?? {}) as Record<string, string>;
      requests.push(h['Last-Event-ID']);
      return fetch(input, { ...init, headers: { ...h, ...headers } });
    },
  });
  for (const type of ['welcome', 'msg', 'live', 'gap', 'reset', 'ping', 'close', 'message'])
    es.addEventListener(type, (e) => {
      const m = e as MessageEvent;
      heard.push({ type, lastEventId: m.lastEventId, data: JSON.parse(m.data) });
    });
  es.addEventListener('error', (e) => {
    const err = e as unknown as { code?: number; message?: string };
    errors.push({ code: err.code, message: err.message });
  });
  const msgIds = () => heard.filter((h) => h.type === 'msg').map((h) => h.data.id as number);
  return {
    es,
    heard,
    requests,
    errors,
    msgIds,
    types: () => heard.map((h) => h.type),
    until: (what: string, check: () => boolean, ms = 10_000) => until(check, ms, what),
    has: (type: string) => heard.some((h) => h.type === type),
    hasMsg: (id: number) => msgIds().includes(id),
  };
}

describe('GET /v1/sse with the eventsource package', () => {
  it('streams welcome, live, then every message on its patterns live, each with the event id <epoch>:<id>', async () => {
    const [head] = await publishBatch(open, ['lv.none']);
    const l = listen(sseUrl(open, { recipient: 'live-1', subs: ['lv.a.*', 'lv.b'] }));
    await l.until('live', () => l.has('live'));
    const channels = Array.from({ length: 30 }, (_, i) => ['lv.a.1', 'lv.x', 'lv.b', 'lv.a.2.3', 'lv.bb', 'lv.a'][i % 6] as string);
    channels.push('lv.b');
    const ids = await publishBatch(open, channels);
    const expected = pick(ids, channels, (ch) => ch.startsWith('lv.a.') || ch === 'lv.b');
    await l.until('the last message', () => l.hasMsg(expected[expected.length - 1] as number));
    l.es.close();

    const [welcome, live, ...msgs] = l.heard;
    const epoch = welcome?.data.epoch as string;
    expect(l.msgIds()).toEqual(expected);
    expect(l.types()).toEqual(['welcome', 'live', ...expected.map(() => 'msg')]);
    expect(welcome?.data).toEqual({ op: 'welcome', v: 1, conn: expect.any(String), recipient: 'live-1', epoch, resumeFrom: head, head });
    expect(epoch).toMatch(/^[A-Za-z0-9_-]+$/);
    expect([live?.lastEventId, live?.data]).toEqual([`${epoch}:${head}`, { op: 'live', id: head }]);
    for (const m of msgs) {
      const n = ids.indexOf(m.data.id);
      expect([m.lastEventId, m.data]).toEqual([
        `${epoch}:${m.data.id}`,
        { op: 'msg', id: m.data.id, ch: channels[n], data: { n, ch: channels[n] }, ts: expect.any(Number) },
      ]);
    }
    expect(l.errors).toEqual([]);
  });

  it('catches up on what was published while away, then goes live, with no gap and no duplicate at the hand-over', async () => {
    const first = listen(sseUrl(open, { recipient: 'catch-up', subs: ['cu.*'] }));
    await first.until('live', () => first.has('live'));
    first.es.close();
    const startedAt = first.heard[0]?.data.resumeFrom as number;

    const channels = (n: number) => Array.from({ length: n }, (_, i) => ['cu.a', 'cu.b', 'other'][i % 3] as string);
    const before = channels(300);
    const backlog = await publishBatch(open, before);
    const l = listen(sseUrl(open, { recipient: 'catch-up', subs: ['cu.*'] }));
    // Published while the second stream opens and replays: some land in its replay, some in its live buffer.
    const during: number[] = [];
    const duringChannels: string[] = [];
    for (let i = 0; i < 20; i++) {
      const chs = channels(10);
      during.push(...(await publishBatch(open, chs)));
      duringChannels.push(...chs);
    }
    const after = channels(2);
    after.reverse(); // the last one matches
    const live = await publishBatch(open, after);
    const expected = [
      ...pick(backlog, before, (ch) => ch !== 'other'),
      ...pick(during, duringChannels, (ch) => ch !== 'other'),
      ...pick(live, after, (ch) => ch !== 'other'),
    ];
    await l.until('the last message', () => l.hasMsg(expected[expected.length - 1] as number));
    l.es.close();

    expect(l.heard[0]?.data).toMatchObject({ op: 'welcome', resumeFrom: startedAt });
    expect(l.msgIds()).toEqual(expected);
    const types = l.types();
    expect(types.filter((t) => t === 'live')).toEqual(['live']);
    // Everything before `live` has an id at most its id; everything after, above it.
    const liveAt = types.indexOf('live');
    const liveId = l.heard[liveAt]?.data.id as number;
    const ids = l.msgIds();
    expect(ids.slice(0, liveAt - 1).every((id) => id <= liveId)).toBe(true);
    expect(ids.slice(liveAt - 1).every((id) => id > liveId)).toBe(true);
  });

  it('reconnects on its own when the server ends the stream, sending Last-Event-ID, and resumes exactly after it', async () => {
    const port = await freePort();
    const env = { DPS_NAMESPACE: 'sse-restart', PORT: String(port) };
    let node = await startTestServer(redis.url, env);
    const other = await startTestServer(redis.url, { DPS_NAMESPACE: 'sse-restart' });
    try {
      const l = listen(sseUrl(node, { recipient: 'restarted', subs: ['rs.*'] }));
      await l.until('live', () => l.has('live'));
      const epoch = l.heard[0]?.data.epoch as string;
      const a = await publishBatch(
        other,
        Array.from({ length: 20 }, (_, i) => (i % 2 ? 'rs.a' : 'rs.b')),
      );
      await l.until('the first messages', () => l.hasMsg(a[19] as number));
      await node.stop(); // the stream ends with a `close` event; the package reconnects after `retry`
      const b = await publishBatch(
        other,
        Array.from({ length: 20 }, (_, i) => (i % 3 ? 'rs.c' : 'nope')),
      );
      node = await startTestServer(redis.url, env);
      const bWanted = b.filter((_, i) => i % 3 !== 0);
      await l.until('the messages published while it was away', () => l.hasMsg(bWanted[bWanted.length - 1] as number), 20_000);
      const c = await publishBatch(other, ['rs.d', 'rs.e']);
      await l.until('live messages after the reconnect', () => l.hasMsg(c[1] as number));
      l.es.close();

      expect(l.msgIds()).toEqual([...a, ...bWanted, ...c]);
      const close = l.heard.find((h) => h.type === 'close');
      expect(close?.data).toEqual({ code: 1001, reason: expect.any(String) });
      // The first request has no Last-Event-ID; every reconnect sends the id of the last event before the close.
      expect(l.requests[0]).toBe(undefined);
      expect(l.requests.length).toBeGreaterThanOrEqual(2);
      expect(l.requests.slice(1)).toEqual(l.requests.slice(1).map(() => `${epoch}:${a[19]}`));
      const welcomes = l.heard.filter((h) => h.type === 'welcome').map((h) => h.data);
      expect(welcomes[1]).toMatchObject({ resumeFrom: a[19], epoch });
      expect(welcomes[1].epochChanged).toBe(undefined);
      // The reconnect stored the Last-Event-ID as the recipient's position.
      expect((await recipientEntry(other, 'restarted'))?.lastAckedId).toBe(a[19]);
    } finally {
      await Promise.all([node.stop(), other.stop()]);
    }
  });

  it('ends the stream with close 1001 when the log is lost; the package comes back with the old id and gets reset and the new log', async () => {
    const own = await startTestRedis(); // FLUSHALL must not touch the other servers' logs
    const node = await startTestServer(own.url, { DPS_NAMESPACE: 'sse-flush' });
    try {
      const l = listen(sseUrl(node, { recipient: 'flushed', subs: ['fl.*'] }));
      await l.until('live', () => l.has('live'));
      const oldEpoch = l.heard[0]?.data.epoch as string;
      const [old] = (await publishBatch(node, ['fl.a'])) as [number];
      await l.until('the first message', () => l.hasMsg(old));
      await own.client.flushall();
      // The server notices the new log at its next look (this publish) and ends every stream of the old one.
      const fresh = await publishBatch(node, ['fl.a', 'x', 'fl.b']);
      expect(fresh).toEqual([1, 2, 3]);
      await l.until('the reset', () => l.has('reset') && l.hasMsg(3));
      l.es.close();
      const newEpoch = l.heard.filter((h) => h.type === 'welcome')[1]?.data.epoch as string;
      expect(newEpoch).not.toBe(oldEpoch);
      expect(l.heard.map((h) => (h.type === 'msg' || h.type === 'live' ? `${h.type} ${h.data.id}` : h.type))).toEqual([
        'welcome',
        'live 0',
        `msg ${old}`,
        'close',
        'welcome',
        'reset',
        'msg 1',
        'msg 3',
        'live 3',
      ]);
      expect(l.heard[3]?.data.code).toBe(1001);
      expect(l.heard[4]?.data).toMatchObject({ epoch: newEpoch, resumeFrom: 0, epochChanged: true });
      expect(l.heard[5]?.data).toEqual({ oldEpoch, newEpoch, lastAckedId: old });
      expect(l.requests.slice(1)).toEqual(l.requests.slice(1).map(() => `${oldEpoch}:${old}`));
      expect([l.heard[6]?.lastEventId, l.heard[8]?.lastEventId]).toEqual([`${newEpoch}:1`, `${newEpoch}:3`]);
    } finally {
      await node.stop();
      await own.cleanup();
    }
  });

  it('keeps the stream alive: a ping event every keep-alive with ping=1', async () => {
    const l = listen(sseUrl(tuned, { recipient: 'pinged', subs: ['k.*'], ping: true }));
    await l.until('three pings', () => l.heard.filter((h) => h.type === 'ping').length >= 3);
    l.es.close();
    expect(l.heard.slice(0, 2).map((h) => h.type)).toEqual(['welcome', 'live']);
    expect(l.heard.slice(2).map((h) => [h.type, h.data])).toEqual(l.heard.slice(2).map(() => ['ping', {}]));
  });

  it('refuses a wrong token with 401: the package reports it and does not reconnect', async () => {
    const l = listen(sseUrl(secured, { recipient: 'u', subs: ['*'], token: 'not-a-jwt' }));
    await l.until('the error', () => l.errors.length > 0);
    expect([l.errors[0]?.code, l.es.readyState, l.heard]).toEqual([401, EventSource.CLOSED, []]);
  });
});

describe('GET /v1/sse resuming', () => {
  it('resumes exactly after a Last-Event-ID header or ?lastEventId= on a fresh request, storing it; without one, from the stored position', async () => {
    const first = await SseReader.open(sseUrl(open, { recipient: 'resumer', subs: ['ra.*'] }));
    const epoch = (await first.next('welcome')).data.epoch as string;
    await first.next('live');
    first.close();
    const ids = await publishBatch(
      open,
      Array.from({ length: 10 }, (_, i) => `ra.${i % 3}`),
    );
    const at = (i: number) => `${epoch}:${ids[i]}`;
    const stored = async () => (await recipientEntry(open, 'resumer'))?.lastAckedId;
    const read = async (q: ReadQuery, headers: Record<string, string> = {}) => {
      const r = await SseReader.open(sseUrl(open, { recipient: 'resumer', subs: ['ra.*'], ...q }), headers);
      await r.next('live');
      r.close();
      return { welcome: r.events[0]?.data, ids: r.msgIds(), stored: await stored() };
    };

    const byHeader = await read({}, { 'last-event-id': at(3) });
    expect(byHeader).toEqual({ welcome: expect.objectContaining({ resumeFrom: ids[3] }), ids: ids.slice(4), stored: ids[3] });
    const byQuery = await read({ lastEventId: at(6) });
    expect([byQuery.welcome.resumeFrom, byQuery.ids, byQuery.stored]).toEqual([ids[6], ids.slice(7), ids[6]]);
    const headerWins = await read({ lastEventId: at(1) }, { 'last-event-id': at(8) });
    expect([headerWins.ids, headerWins.stored]).toEqual([ids.slice(9), ids[8]]);
    const fromStored = await read({});
    expect([fromStored.welcome.resumeFrom, fromStored.ids, fromStored.stored]).toEqual([ids[8], ids.slice(9), ids[8]]);
    // An older Last-Event-ID is served from where it says, and the stored position does not move back.
    const older = await read({}, { 'last-event-id': at(2) });
    expect([older.ids, older.stored]).toEqual([ids.slice(3), ids[8]]);
  });

  it('answers a foreign epoch with a reset event and a replay from the earliest retained message', async () => {
    const channels = ['fe.a', 'x', 'fe.b', 'fe.a', 'y'];
    const ids = await publishBatch(open, channels);
    const r = await SseReader.open(sseUrl(open, { recipient: 'foreign', subs: ['fe.*'] }), { 'last-event-id': 'oldEpoch_1-x:42' });
    await r.next('live');
    r.close();
    const epoch = r.events[0]?.data.epoch as string;
    const last = ids[ids.length - 1] as number;
    expect(r.events[0]?.data).toEqual({
      op: 'welcome',
      v: 1,
      conn: expect.any(String),
      recipient: 'foreign',
      epoch,
      resumeFrom: 0,
      head: last,
      epochChanged: true,
    });
    expect(r.events[1]).toEqual({ event: 'reset', id: undefined, data: { oldEpoch: 'oldEpoch_1-x', newEpoch: epoch, lastAckedId: 42 } });
    const wanted = pick(ids, channels, (ch) => ch.startsWith('fe.'));
    expect(r.summary()).toEqual(['welcome', 'reset', ...wanted.map((id) => `msg ${id}`), `live ${last}`]);
    // Everything earlier on fe.* (none: the channels are this test's own) and nothing else.
    expect(r.msgIds()).toEqual(wanted);
  });

  it('gives a new recipient what was published before it came with from=earliest; the default starts at the head', async () => {
    const ids = await publishBatch(open, ['ea.1', 'ea.2', 'eb', 'ea.3']);
    const early = await SseReader.open(sseUrl(open, { recipient: 'early', subs: ['ea.*'], from: 'earliest' }));
    const late = await SseReader.open(sseUrl(open, { recipient: 'late', subs: ['ea.*'] }));
    await Promise.all([early.next('live'), late.next('live')]);
    const [more] = (await publishBatch(open, ['ea.4'])) as [number];
    await Promise.all([early.upTo(more), late.upTo(more)]);
    early.close();
    late.close();
    expect([early.events[0]?.data.resumeFrom, early.msgIds()]).toEqual([0, [ids[0], ids[1], ids[3], more]]);
    expect([late.events[0]?.data.resumeFrom, late.msgIds()]).toEqual([ids[3], [more]]);
    // `from` is for a new recipient only: `late` resumes where it is stored.
    const again = await SseReader.open(sseUrl(open, { recipient: 'late', subs: ['ea.*'], from: 'earliest' }));
    await again.next('live');
    again.close();
    expect([again.events[0]?.data.resumeFrom, again.msgIds()]).toEqual([ids[3], [more]]);
  });

  it('reports what retention removed before the recipient came back as a gap event, then the rest', async () => {
    const first = await SseReader.open(sseUrl(tuned, { recipient: 'gappy', subs: ['g.*'] }));
    await first.next('live');
    first.close();
    const from = first.events[0]?.data.resumeFrom as number;
    const a = await publishBatch(tuned, Array(10).fill('g.a'));
    const b = await publishBatch(tuned, ['g.b', 'g.b']);
    const r = await SseReader.open(sseUrl(tuned, { recipient: 'gappy', subs: ['g.*'] }));
    await r.next('live');
    r.close();
    expect(r.summary()).toEqual([
      'welcome',
      `gap g.a ${from}-${a[6]}`,
      ...[a[7], a[8], a[9], b[0], b[1]].map((id) => `msg ${id}`),
      `live ${b[1]}`,
    ]);
    expect(r.events[1]).toEqual({
      event: 'gap',
      id: undefined,
      data: { op: 'gap', ch: 'g.a', after: from, upTo: a[6], reason: 'retention' },
    });
  });
});

describe('GET /v1/sse with auth on', () => {
  it('takes the token by ?token= and by Authorization header, and never delivers a channel outside the grant', async () => {
    const token = await mintToken(SECRET, 'reader', ['ok.*']);
    const pubToken = await mintToken(SECRET, 'publisher', [], '1h');
    const byQuery = listen(sseUrl(secured, { recipient: 'reader', subs: ['*'], token }));
    const byHeader = await SseReader.open(sseUrl(secured, { recipient: 'reader', subs: ['ok.a', 'no.*'] }), {
      authorization: `Bearer ${token}`,
    });
    await byQuery.until('live', () => byQuery.has('live'));
    await byHeader.next('live');
    const channels = ['no.x', 'ok.a', 'no.y', 'ok.b', 'no.z', 'ok.a'];
    const ids = await publishBatch(secured, channels, { authorization: `Bearer ${pubToken}` });
    await byQuery.until('the last message', () => byQuery.hasMsg(ids[5] as number));
    await byHeader.upTo(ids[5] as number);
    byQuery.es.close();
    byHeader.close();
    expect(byQuery.msgIds()).toEqual([ids[1], ids[3], ids[5]]);
    expect(byHeader.msgIds()).toEqual([ids[1], ids[5]]);
  });

  it('never reports a retention gap on a channel outside the grant', async () => {
    const node = await startTestServer(redis.url, { DPS_NAMESPACE: 'sse-auth-gap', DPS_JWT_SECRET: SECRET, DPS_RETENTION_MAX_LEN: '2' });
    try {
      const token = await mintToken(SECRET, 'gapped', ['ok.*']);
      const first = await SseReader.open(sseUrl(node, { recipient: 'gapped', subs: ['*'], token }));
      await first.next('live');
      first.close();
      const from = first.events[0]?.data.resumeFrom as number;
      const no = await publishBatch(node, Array(5).fill('no.a'), { authorization: `Bearer ${token}` });
      const ok = await publishBatch(node, Array(5).fill('ok.a'), { authorization: `Bearer ${token}` });
      const r = await SseReader.open(sseUrl(node, { recipient: 'gapped', subs: ['*'], token }));
      await r.next('live');
      r.close();
      expect(r.summary()).toEqual(['welcome', `gap ok.a ${from}-${ok[2]}`, `msg ${ok[3]}`, `msg ${ok[4]}`, `live ${ok[4]}`]);
      expect(no).toHaveLength(5);
    } finally {
      await node.stop();
    }
  });

  it('ends the stream with a close event 4401 when the token expires; the package’s reconnect is then refused with 401', async () => {
    const token = await mintToken(SECRET, 'short-lived', ['ok.*'], Math.floor(Date.now() / 1000) + 2);
    const l = listen(sseUrl(secured, { recipient: 'short-lived', subs: ['ok.*'], token }));
    await l.until('live', () => l.has('live'));
    await l.until('the close and the refused reconnect', () => l.has('close') && l.es.readyState === EventSource.CLOSED, 15_000);
    expect(l.types()).toEqual(['welcome', 'live', 'close']);
    expect(l.heard[2]?.data).toEqual({ code: 4401, reason: expect.any(String) });
    expect(l.errors.at(-1)?.code).toBe(401);
  });

  it('refuses a missing, wrong, expired or someone else’s token with 401 JSON before the stream starts', async () => {
    const q = { recipient: 'reader', subs: ['ok.*'] };
    const answers = await Promise.all([
      SseReader.open(sseUrl(secured, q)),
      SseReader.open(sseUrl(secured, { ...q, token: 'not.a.jwt' })),
      SseReader.open(sseUrl(secured, q), { authorization: 'Bearer nope' }),
      SseReader.open(sseUrl(secured, { ...q, token: await mintToken(SECRET, 'reader', ['ok.*'], Math.floor(Date.now() / 1000) - 60) })),
      SseReader.open(sseUrl(secured, { ...q, token: await mintToken(SECRET, 'someone-else', ['ok.*']) })),
      SseReader.open(sseUrl(secured, q), { authorization: `Bearer ${await mintToken(SECRET, 'reader', ['ok.*'], '1h')}x` }),
    ]);
    expect(answers.map((a) => [a.status, a.headers.get('content-type'), a.refusal?.error?.code, typeof a.refusal?.error?.message])).toEqual(
      Array(6).fill([401, 'application/json; charset=utf-8', 'unauthorized', 'string']),
    );
  });
});
