// The SSE socket against a scripted fetch: what each frame the client sends becomes on HTTP, and what the stream and the answers become as frames and closes.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { httpBase, SseSocket } from './sse-socket';

interface Call {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: unknown;
}

/** A fetch that records its calls and answers from `answer`; a stream answer is fed by `push` and ended by `end`. */
function fakeFetch(answer: (c: Call) => Response | Promise<Response>) {
  const calls: Call[] = [];
  let ctl: ReadableStreamDefaultController<Uint8Array> | undefined;
  const bytes = new TextEncoder();
  vi.stubGlobal('fetch', async (url: string, init: RequestInit = {}) => {
    const c: Call = { url, method: init.method ?? 'GET', headers: { ...(init.headers as Record<string, string>) } };
    if (init.body !== undefined) c.body = JSON.parse(String(init.body));
    calls.push(c);
    return answer(c);
  });
  return {
    calls,
    stream: () =>
      new Response(new ReadableStream<Uint8Array>({ start: (c) => void (ctl = c) }), {
        status: 200,
        headers: { 'content-type': 'text/event-stream' },
      }),
    push: (text: string) => ctl?.enqueue(bytes.encode(text)),
    end: () => ctl?.close(),
  };
}

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status });
/** A turn of the event loop: what was due (the socket's own a-tick-later) has run. */
const tick = () => new Promise((r) => setTimeout(r, 5));

/** A socket on `url`, opened, with what it reports. */
async function open(url = 'ws://h.example:8080/ws') {
  const s = new SseSocket(url);
  const frames: unknown[] = [];
  const closes: { code: number; reason: string }[] = [];
  s.onmessage = (e) => void frames.push(JSON.parse(String(e.data)));
  s.onclose = (e) => void closes.push({ code: e.code, reason: e.reason });
  let opened = false;
  s.onopen = () => void (opened = true);
  expect(s.readyState).toBe(0);
  await expect.poll(() => [opened, s.readyState]).toEqual([true, 1]);
  return { s, frames, closes };
}

const HELLO = {
  op: 'hello',
  v: 1,
  recipient: 'r 1',
  subs: ['a.*', 'b'],
  token: 't0k',
  epoch: 'e1',
  lastAckedId: 41,
  from: 'earliest',
  batch: true,
};

afterEach(() => vi.unstubAllGlobals());

describe('SseSocket', () => {
  it('derives the HTTP base from a ws url (origin only) and keeps an http url as given', () => {
    expect(httpBase('ws://h:8080/ws')).toBe('http://h:8080');
    expect(httpBase('wss://h.example/deep/ws?x=1')).toBe('https://h.example');
    expect(httpBase('https://h.example/pubsub/')).toBe('https://h.example/pubsub');
  });

  it('opens the stream from the hello and passes its frames on; pings come as pongs, reset is left to the welcome', async () => {
    const f = fakeFetch(() => f.stream());
    const { s, frames, closes } = await open();
    s.send(JSON.stringify(HELLO));
    await expect
      .poll(() => f.calls)
      .toEqual([
        {
          url: 'http://h.example:8080/v1/sse?recipient=r+1&ping=1&subs=a.*&subs=b&from=earliest&lastEventId=e1%3A41',
          method: 'GET',
          headers: { accept: 'text/event-stream', authorization: 'Bearer t0k' },
        },
      ]);
    f.push(
      'retry: 1000\n\nevent: welcome\ndata: {"op":"welcome","epoch":"e2","epochChanged":true}\n\nevent: reset\ndata: {"oldEpoch":"e1"}\n\n',
    );
    f.push(
      'id: e2:1\nevent: msg\ndata: {"op":"msg","id":1}\n\n: keep-alive\n\nevent: ping\ndata: {}\n\nevent: gap\ndata: {"op":"gap"}\n\nid: e2:1\nevent: li',
    );
    f.push('ve\ndata: {"op":"live","id":1}\n\n');
    await expect
      .poll(() => frames)
      .toEqual([
        { op: 'welcome', epoch: 'e2', epochChanged: true },
        { op: 'msg', id: 1 },
        { op: 'pong' },
        { op: 'gap' },
        { op: 'live', id: 1 },
      ]);
    expect(closes).toEqual([]);
    f.end();
    await expect.poll(() => [closes, s.readyState]).toEqual([[{ code: 1006, reason: 'the stream ended' }], 3]);
  });

  it("closes with the server's close event, once, and reads nothing after it", async () => {
    const f = fakeFetch(() => f.stream());
    const { s, frames, closes } = await open();
    s.send(JSON.stringify({ ...HELLO, token: undefined }));
    await expect.poll(() => f.calls[0]?.headers).toEqual({ accept: 'text/event-stream' });
    f.push('event: close\ndata: {"code":4508,"reason":"slow consumer"}\n\nevent: msg\ndata: {"op":"msg","id":1}\n\n');
    await expect.poll(() => [frames, closes]).toEqual([[], [{ code: 4508, reason: 'slow consumer' }]]);
  });

  it('reports a refused stream as the WebSocket close code of its status, with the error message', async () => {
    for (const [status, code] of [
      [400, 4400],
      [401, 4401],
      [403, 4403],
      [429, 4429],
      [503, 1006],
    ] as const) {
      fakeFetch(() => json(status, { error: { code: 'x', message: `refused ${status}` } }));
      const { s, closes } = await open();
      s.send(JSON.stringify(HELLO));
      await expect.poll(() => closes).toEqual([{ code, reason: `refused ${status}` }]);
    }
    fakeFetch(() => new Response('<html>bad gateway</html>', { status: 502 }));
    const { s, closes } = await open();
    s.send(JSON.stringify(HELLO));
    await expect.poll(() => closes).toEqual([{ code: 1006, reason: 'HTTP 502' }]);
  });

  it('publishes one at a time, in order, answering each with a puback or an error frame of its ref', async () => {
    const f = fakeFetch((c) => {
      if (c.method === 'GET') return f.stream();
      const ch = (c.body as { ch: string }).ch;
      if (ch === 'no') return json(403, { error: { code: 'forbidden', message: 'not granted' } });
      return json(200, ch === 'again' ? { id: 5, dup: true } : { id: 6 });
    });
    const { s, frames } = await open();
    s.send(JSON.stringify(HELLO));
    f.push('event: welcome\ndata: {"op":"welcome","epoch":"e1"}\n\n');
    for (const [ref, ch] of [
      ['p1', 'again'],
      ['p2', 'no'],
      ['p3', 'yes'],
    ])
      s.send(JSON.stringify({ op: 'pub', ch, data: { n: 1 }, ref, key: `k-${ref}` }));
    await expect.poll(() => frames).toHaveLength(4);
    expect(f.calls.slice(1)).toEqual(
      ['again', 'no', 'yes'].map((ch, i) => ({
        url: 'http://h.example:8080/v1/publish',
        method: 'POST',
        headers: { authorization: 'Bearer t0k' },
        body: { ch, data: { n: 1 }, key: `k-p${i + 1}` },
      })),
    );
    expect(frames).toEqual([
      { op: 'welcome', epoch: 'e1' },
      { op: 'puback', ref: 'p1', id: 5, dup: true },
      { op: 'error', code: 'forbidden', message: 'not granted', ref: 'p2' },
      { op: 'puback', ref: 'p3', id: 6 },
    ]);
  });

  it('closes (1006) when a publish gets no answer it can read: the client resends it, same key, after reconnecting', async () => {
    const f = fakeFetch((c) => (c.method === 'GET' ? f.stream() : Promise.reject(new TypeError('fetch failed'))));
    const { s, closes } = await open();
    s.send(JSON.stringify(HELLO));
    s.send(JSON.stringify({ op: 'pub', ch: 'a', data: 1, ref: 'p1', key: 'k' }));
    await expect.poll(() => closes).toEqual([{ code: 1006, reason: 'a publish failed' }]);
  });

  it("acks as POST /v1/ack with the welcome's epoch, the recipient and its pattern set", async () => {
    const f = fakeFetch((c) => (c.method === 'GET' ? f.stream() : json(200, { acked: 9 })));
    const { s, frames } = await open();
    s.send(JSON.stringify(HELLO));
    f.push('event: welcome\ndata: {"op":"welcome","epoch":"e7"}\n\n');
    await expect.poll(() => frames).toEqual([{ op: 'welcome', epoch: 'e7' }]);
    s.send(JSON.stringify({ op: 'ping' }));
    s.send(JSON.stringify({ op: 'ack', id: 9 }));
    await expect
      .poll(() => f.calls.slice(1))
      .toEqual([
        {
          url: 'http://h.example:8080/v1/ack',
          method: 'POST',
          headers: { authorization: 'Bearer t0k' },
          body: { recipient: 'r 1', subs: ['a.*', 'b'], id: 'e7:9' },
        },
      ]);
    expect(frames).toEqual([{ op: 'welcome', epoch: 'e7' }]);
  });

  it('ends the stream with one 1001, a tick later, for a burst of sub, unsub and auth frames', async () => {
    const f = fakeFetch(() => f.stream());
    const { s, closes } = await open();
    s.send(JSON.stringify(HELLO));
    s.send(JSON.stringify({ op: 'sub', pattern: 'c' }));
    s.send(JSON.stringify({ op: 'unsub', pattern: 'b' }));
    s.send(JSON.stringify({ op: 'auth', token: 't1' }));
    expect(closes).toEqual([]);
    await tick();
    await tick();
    expect([closes, s.readyState]).toEqual([[{ code: 1001, reason: 'sub: reconnecting' }], 3]);
  });

  it('closes as a WebSocket does when the client closes it: a tick later, with its code, and nothing more', async () => {
    const f = fakeFetch(() => f.stream());
    const { s, frames, closes } = await open();
    s.send(JSON.stringify(HELLO));
    await expect.poll(() => f.calls).toHaveLength(1);
    s.close(4000, 'handler failed');
    expect(s.readyState).toBe(2);
    f.push('event: msg\ndata: {"op":"msg","id":1}\n\n');
    s.send(JSON.stringify({ op: 'pub', ch: 'a', data: 1, ref: 'p1', key: 'k' }));
    await expect.poll(() => closes).toEqual([{ code: 4000, reason: 'handler failed' }]);
    await tick();
    expect([frames, closes, s.readyState, f.calls.length]).toEqual([[], [{ code: 4000, reason: 'handler failed' }], 3, 1]);
  });
});
