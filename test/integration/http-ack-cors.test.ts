// POST /v1/ack (positions stored over HTTP, epochs, bad bodies, tokens) and CORS for pages on other origins.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, startTestServer, type TestRedis, type TestServer } from '../support/env';
import { mintToken, publishBatch, recipientEntry, sseUrl } from '../support/http-read';
import { SseReader } from '../support/sse-reader';

const SECRET = 'ack-secret-that-is-long-enough-0123456789';
let redis: TestRedis;
/** auth off */
let open: TestServer;
/** auth on */
let secured: TestServer;

beforeAll(async () => {
  redis = await startTestRedis();
  [open, secured] = await Promise.all([
    startTestServer(redis.url, { DPS_NAMESPACE: 'ack' }),
    startTestServer(redis.url, { DPS_NAMESPACE: 'ack-auth', DPS_JWT_SECRET: SECRET }),
  ]);
});
afterAll(async () => {
  await Promise.all([open?.stop(), secured?.stop()]);
  await redis?.cleanup();
});

describe('POST /v1/ack', () => {
  const ack = async (body: unknown) => {
    const res = await fetch(`${open.url}/v1/ack`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  it('stores max(stored, id) as the position of (recipient, pattern set), where a later stream resumes', async () => {
    const first = await SseReader.open(sseUrl(open, { recipient: 'acker', subs: ['ak.*', 'ak.z'] }));
    const epoch = (await first.next('welcome')).data.epoch as string;
    await first.next('live');
    first.close();
    const ids = await publishBatch(open, ['ak.a', 'ak.b', 'ak.z', 'ak.a', 'ak.c']);
    // The pattern set is the same whatever the order of its patterns.
    expect(await ack({ recipient: 'acker', subs: ['ak.z', 'ak.*'], id: `${epoch}:${ids[2]}` })).toEqual({
      status: 200,
      body: { acked: ids[2] },
    });
    expect(await ack({ recipient: 'acker', subs: ['ak.*', 'ak.z'], id: `${epoch}:${ids[0]}` })).toEqual({
      status: 200,
      body: { acked: ids[2] },
    });
    const entry = await recipientEntry(open, 'acker');
    expect([entry.lastAckedId, entry.sets.map((s: { lastAckedId: number }) => s.lastAckedId)]).toEqual([ids[2], [ids[2]]]);
    const r = await SseReader.open(sseUrl(open, { recipient: 'acker', subs: ['ak.*', 'ak.z'] }));
    await r.next('live');
    r.close();
    expect([r.events[0]?.data.resumeFrom, r.msgIds()]).toEqual([ids[2], [ids[3], ids[4]]]);
  });

  it('does not let an ack beyond the head make later streams skip what is published after it', async () => {
    const first = await SseReader.open(sseUrl(open, { recipient: 'far-acker', subs: ['fa.*'] }));
    const welcome = (await first.next('welcome')).data;
    await first.next('live');
    first.close();
    const beyond = await ack({ recipient: 'far-acker', subs: ['fa.*'], id: `${welcome.epoch}:${welcome.head + 1000}` });
    expect(beyond.status).toBe(200);
    const ids = await publishBatch(open, ['fa.a', 'fa.b', 'fa.c']);
    const r = await SseReader.open(sseUrl(open, { recipient: 'far-acker', subs: ['fa.*'] }));
    await r.next('live');
    r.close();
    // The recipient cannot have processed messages that did not exist: nothing published since may be skipped.
    expect(r.msgIds()).toEqual(ids);
  });

  it('answers a position of another epoch with 409 epoch_changed, and a bad body with 400', async () => {
    const conflict = await ack({ recipient: 'acker', subs: ['ak.*', 'ak.z'], id: 'someOtherEpoch:3' });
    expect([conflict.status, conflict.body.error.code]).toEqual([409, 'epoch_changed']);
    const bad = await Promise.all(
      [
        'not json',
        {},
        { recipient: 'acker', subs: ['ak.*'] },
        { recipient: 'acker', subs: ['ak.*'], id: 5 },
        { recipient: 'acker', subs: ['ak.*'], id: 'no-colon' },
        { recipient: 'acker', subs: ['ak.*'], id: 'e:-1' },
        { recipient: '', subs: ['ak.*'], id: 'e:1' },
        { recipient: 'acker', subs: 'ak.*', id: 'e:1' },
        { subs: ['ak.*'], id: 'e:1' },
      ].map(ack),
    );
    expect(bad.map((b) => [b.status, b.body.error.code])).toEqual(Array(9).fill([400, 'bad_request']));
    expect((await recipientEntry(open, 'acker')).lastAckedId).toBeGreaterThan(0);
  });

  it('takes POST /v1/ack only with a token whose sub is the recipient', async () => {
    const token = await mintToken(SECRET, 'acking', ['ok.*']);
    const first = await SseReader.open(sseUrl(secured, { recipient: 'acking', subs: ['ok.*'], token }));
    const epoch = (await first.next('welcome')).data.epoch as string;
    await first.next('live');
    first.close();
    const [id] = (await publishBatch(secured, ['ok.ack'], { authorization: `Bearer ${token}` })) as [number];
    const post = async (headers: Record<string, string>) => {
      const res = await fetch(`${secured.url}/v1/ack`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ recipient: 'acking', subs: ['ok.*'], id: `${epoch}:${id}` }),
      });
      return [res.status, ((await res.json()) as any).error?.code ?? 'ok'];
    };
    expect(await post({})).toEqual([401, 'unauthorized']);
    expect(await post({ authorization: `Bearer ${await mintToken(SECRET, 'someone-else', ['ok.*'])}` })).toEqual([401, 'unauthorized']);
    expect(await post({ authorization: `Bearer ${token}` })).toEqual([200, 'ok']);
    const r = await SseReader.open(sseUrl(secured, { recipient: 'acking', subs: ['ok.*'], token }));
    await r.next('live');
    r.close();
    expect([r.events[0]?.data.resumeFrom, r.msgIds()]).toEqual([id, []]);
  });
});

describe('CORS', () => {
  const ORIGIN = 'http://page.example:5173';

  it('lets an allowed origin read /v1/sse and /v1/poll: allow-origin and vary, no credentials', async () => {
    const sse = await SseReader.open(sseUrl(open, { recipient: 'cors', subs: ['co.*'] }), { origin: ORIGIN });
    await sse.next('live');
    sse.close();
    const poll = await fetch(sseUrl(open, { recipient: 'cors', subs: ['co.*'] }, '/v1/poll').replace('?', '?timeout=0&'), {
      headers: { origin: ORIGIN },
    });
    await poll.json();
    for (const res of [sse, poll]) {
      expect([res.status, res.headers.get('access-control-allow-origin'), res.headers.get('vary')?.toLowerCase()]).toEqual([
        200,
        ORIGIN,
        'origin',
      ]);
      expect(res.headers.get('access-control-allow-credentials')).toBe(null);
    }
  });

  it('lets an allowed origin read a refusal too', async () => {
    const refused = await SseReader.open(sseUrl(open, { recipient: '', subs: ['co.*'] }), { origin: ORIGIN });
    expect([refused.status, refused.headers.get('access-control-allow-origin'), refused.refusal?.error?.code]).toEqual([
      400,
      ORIGIN,
      'bad_request',
    ]);
  });

  it('answers a preflight with 204, the methods, the headers and a max-age', async () => {
    for (const path of ['/v1/sse', '/v1/poll', '/v1/ack']) {
      const res = await fetch(`${open.url}${path}`, {
        method: 'OPTIONS',
        headers: {
          origin: ORIGIN,
          'access-control-request-method': path === '/v1/ack' ? 'POST' : 'GET',
          'access-control-request-headers': 'last-event-id, authorization',
        },
      });
      expect([
        res.status,
        res.headers.get('access-control-allow-origin'),
        res.headers.get('access-control-allow-methods'),
        res.headers.get('access-control-allow-headers'),
        res.headers.get('access-control-max-age'),
        res.headers.get('access-control-allow-credentials'),
        await res.text(),
      ]).toEqual([204, ORIGIN, 'GET, POST, DELETE, OPTIONS', 'authorization, content-type, last-event-id', '600', null, '']);
    }
  });

  it('with auth on and no list, allows the server’s own host only', async () => {
    const own = `http://127.0.0.1:${secured.port}`;
    const answers = await Promise.all(
      [own, ORIGIN].map((origin) =>
        fetch(`${secured.url}/v1/sse`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET' } }),
      ),
    );
    expect(answers.map((r) => r.headers.get('access-control-allow-origin'))).toEqual([own, null]);
    expect(answers[0]?.status).toBe(204);
  });
});
