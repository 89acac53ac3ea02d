// Bad input to GET /v1/sse, GET /v1/poll and POST /v1/ack: refused with the right status before anything streams, and a reader alongside loses nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpPublish, startTestRedis, startTestServer, type TestRedis, type TestServer, until } from '../support/env';
import { RawClient } from '../support/raw-client';
import { SseReader } from '../support/sse-reader';

let redis: TestRedis;
let server: TestServer;
let bystander: SseReader;
let epoch: string;
const published: number[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  server = await startTestServer(redis.url, { DPS_MAX_CONNECTIONS_PER_RECIPIENT: '2', DPS_MAX_BODY: '2048' });
  bystander = await SseReader.open(url('/v1/sse', 'recipient=bystander&subs=feed'));
  epoch = (await bystander.next('welcome')).data.epoch;
  await bystander.next('live');
});
afterAll(async () => {
  bystander?.close();
  await server?.stop();
  await redis?.cleanup();
});

function url(path: string, query: string): string {
  return `${server.url}${path}?${query}`;
}

/** One message for the bystander after each piece of bad input. */
async function publishOne(): Promise<void> {
  const r = await httpPublish(server, { ch: 'feed', data: published.length });
  expect(r.status).toBe(200);
  published.push(r.body.id);
}

/** A GET's status, content type and JSON body; a stream that was opened (not refused) is closed at once, without a body. */
async function get(
  path: string,
  query: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; type: string | null; body: any }> {
  const abort = new AbortController();
  const res = await fetch(url(path, query), { headers, signal: abort.signal });
  const type = res.headers.get('content-type');
  if (type?.startsWith('text/event-stream')) {
    abort.abort();
    return { status: res.status, type, body: null };
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, type, body };
}

const refusal = (status: number, code: string) => [status, 'application/json; charset=utf-8', code];
const asRefusal = (r: { status: number; type: string | null; body: any }) => [r.status, r.type, r.body?.error?.code];

async function connectionsOf(name: string): Promise<number> {
  const body = (await (await fetch(`${server.url}/v1/recipients`)).json()) as { recipients: { name: string; connections: number }[] };
  return body.recipients.find((r) => r.name === name)?.connections ?? 0;
}

const MALFORMED = [
  'abc',
  '5',
  ':5',
  'epoch:',
  'epoch:-1',
  'epoch:1.5',
  'epoch:1e3',
  'epoch:x',
  'epoch:1:2',
  'a b:1',
  'a.b:1',
  `${'e'.repeat(65)}:1`,
  'epoch:99999999999999999',
  'epoch:9007199254740993',
];

describe('bad input to the HTTP readers', () => {
  it('refuses a malformed Last-Event-ID, ?lastEventId= or after with 400 before anything streams', async () => {
    const q = 'recipient=bad-resume&subs=x';
    const answers = await Promise.all([
      ...MALFORMED.map((v) => get('/v1/sse', q, { 'last-event-id': v })),
      ...MALFORMED.map((v) => get('/v1/sse', `${q}&lastEventId=${encodeURIComponent(v)}`)),
      ...MALFORMED.map((v) => get('/v1/poll', `${q}&timeout=0&after=${encodeURIComponent(v)}`)),
    ]);
    expect(answers.map(asRefusal)).toEqual(Array(MALFORMED.length * 3).fill(refusal(400, 'bad_request')));
    await publishOne();
  });

  it('takes a well-formed Last-Event-ID of a foreign epoch, whatever its id: reset, then everything from the earliest', async () => {
    const [first] = (await httpPublish(server, { messages: [{ ch: 'fx.a', data: 1 }] })).body.ids as [number];
    const r = await SseReader.open(url('/v1/sse', 'recipient=foreign&subs=fx.*'), { 'last-event-id': 'zzzzzzzzzzzz:9007199254740991' });
    await r.next('live');
    r.close();
    expect([
      r.status,
      r.events[0]?.data.epochChanged,
      r.events[0]?.data.resumeFrom,
      r.events[1]?.event,
      r.events[1]?.data.lastAckedId,
    ]).toEqual([200, true, 0, 'reset', 9007199254740991]);
    expect(r.msgIds()).toEqual([first]);
    await publishOne();
  });

  it('does not skip later messages when a Last-Event-ID of the current epoch lies beyond the head', async () => {
    const r = await SseReader.open(url('/v1/sse', 'recipient=ahead&subs=ah.*'), { 'last-event-id': `${epoch}:1000000` });
    await r.next('live');
    const [id] = (await httpPublish(server, { messages: [{ ch: 'ah.a', data: 1 }] })).body.ids as [number];
    await r.upTo(id);
    r.close();
    expect(r.msgIds()).toEqual([id]);
    await publishOne();
  });

  it('refuses a missing or empty recipient, empty or bad subs, and a bad from with 400, on both readers', async () => {
    const queries = [
      'subs=x',
      'recipient=&subs=x',
      'recipient=r&subs=',
      `recipient=r&subs=${'p'.repeat(257)}`,
      'recipient=r&subs=*.*.*.*.*',
      'recipient=r&subs=x&from=tail',
    ];
    const answers = await Promise.all([...queries.map((q) => get('/v1/sse', q)), ...queries.map((q) => get('/v1/poll', `${q}&timeout=0`))]);
    expect(answers.map(asRefusal)).toEqual(Array(queries.length * 2).fill(refusal(400, 'bad_request')));
    await publishOne();
  });

  it('refuses a request without subs with 400 on both readers (the spec: at least one pattern)', async () => {
    const answers = await Promise.all([get('/v1/sse', 'recipient=no-subs'), get('/v1/poll', 'recipient=no-subs&timeout=0')]);
    await publishOne();
    expect(answers.map(asRefusal)).toEqual([refusal(400, 'bad_request'), refusal(400, 'bad_request')]);
  });

  it('refuses a huge subs: too many patterns with 400; a URL past the header limit with 431; and keeps serving', async () => {
    const many = Array.from({ length: 101 }, (_, i) => `subs=p${i}`).join('&');
    const [sse, poll] = await Promise.all([get('/v1/sse', `recipient=many&${many}`), get('/v1/poll', `recipient=many&timeout=0&${many}`)]);
    expect([asRefusal(sse), asRefusal(poll)]).toEqual([refusal(400, 'bad_request'), refusal(400, 'bad_request')]);
    // 100 patterns is the limit, not past it.
    const hundred = await get('/v1/poll', `recipient=hundred&timeout=0&${Array.from({ length: 100 }, (_, i) => `subs=p${i}`).join('&')}`);
    expect(hundred.status).toBe(200);

    const huge = Array.from({ length: 400 }, (_, i) => `subs=${'h'.repeat(40)}${i}`).join('&'); // ~20 KB
    const tooLong = await Promise.all([
      fetch(url('/v1/sse', `recipient=huge&${huge}`)).then(
        (r) => r.status,
        (e: Error) => e.message,
      ),
      fetch(url('/v1/poll', `recipient=huge&${huge}`)).then(
        (r) => r.status,
        (e: Error) => e.message,
      ),
    ]);
    expect(tooLong).toEqual([431, 431]);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    await publishOne();
  });

  it('allows a recipient DPS_MAX_CONNECTIONS_PER_RECIPIENT streams, WebSocket, SSE and long-poll together (429 past it)', async () => {
    const ws = await RawClient.connect(server.wsUrl);
    await ws.hello({ recipient: 'crowd', subs: ['cr.*'] });
    const sse = await SseReader.open(url('/v1/sse', 'recipient=crowd&subs=cr.*'));
    await sse.next('live');
    const [sse2, poll, otherSet] = await Promise.all([
      get('/v1/sse', 'recipient=crowd&subs=cr.*'),
      get('/v1/poll', 'recipient=crowd&subs=cr.*&timeout=0'),
      get('/v1/sse', 'recipient=crowd&subs=elsewhere'),
    ]);
    expect([asRefusal(sse2), asRefusal(poll), asRefusal(otherSet)]).toEqual([
      refusal(429, 'rate_limited'),
      refusal(429, 'rate_limited'),
      refusal(429, 'rate_limited'),
    ]);
    const ws2 = await RawClient.connect(server.wsUrl);
    ws2.send({ op: 'hello', v: 1, recipient: 'crowd', subs: ['cr.*'] });
    expect(await ws2.closed()).toBe(4429);
    // Another recipient is not affected.
    const other = await get('/v1/poll', 'recipient=not-crowd&subs=cr.*&timeout=0');
    expect(other.status).toBe(200);

    // A waiting long-poll counts too; a stream that ends frees its place.
    sse.close();
    await until(async () => (await connectionsOf('crowd')) === 1, 10_000, 'the stream to be gone');
    const aborted = new AbortController();
    const waiting = fetch(url('/v1/poll', 'recipient=crowd&subs=cr.*&timeout=30'), { signal: aborted.signal }).catch(() => null);
    await until(async () => (await connectionsOf('crowd')) === 2, 10_000, 'the poll to wait');
    const third = await get('/v1/sse', 'recipient=crowd&subs=cr.*');
    expect(asRefusal(third)).toEqual(refusal(429, 'rate_limited'));
    aborted.abort();
    await waiting;
    ws.close();
    await until(async () => (await connectionsOf('crowd')) === 0, 10_000, 'every stream to be gone');
    const again = await SseReader.open(url('/v1/sse', 'recipient=crowd&subs=cr.*'));
    await again.next('live');
    again.close();
    expect(again.status).toBe(200);
    await publishOne();
  });

  it('refuses bad bodies to POST /v1/ack: not JSON 400, too large 413, and GET 405', async () => {
    const post = async (body: string) => {
      const res = await fetch(`${server.url}/v1/ack`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as any };
    };
    const answers = [
      await post('{"recipient":"bystander",'),
      await post(''),
      await post('[]'),
      await post('null'),
      await post(JSON.stringify({ recipient: 'bystander', subs: ['feed'], id: `${epoch}:1`, pad: 'x'.repeat(4000) })),
    ];
    expect(answers.map(asRefusal)).toEqual([
      refusal(400, 'bad_request'),
      refusal(400, 'bad_request'),
      refusal(400, 'bad_request'),
      refusal(400, 'bad_request'),
      refusal(413, 'too_large'),
    ]);
    expect((await fetch(`${server.url}/v1/ack`)).status).toBe(405);
    await publishOne();
  });

  it('after all of it, the bystander has every message, once and in order', async () => {
    await publishOne();
    await bystander.upTo(published[published.length - 1] as number);
    expect(bystander.msgIds()).toEqual(published);
    expect(bystander.ended).toBe(false);
  });
});
