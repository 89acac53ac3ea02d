// The SDK over SSE in Node against the real server and real Redis: catch-up and live exactly, publishes, acks, resuming, sub() while streaming, the fallback and the way back.
import { type ClientState, createClient, memoryStorage, type WebSocketConstructor } from '@durable-pubsub/client-sdk';
import { SseSocket } from '@durable-pubsub/client-sdk/sse';
import { freePort } from '@durable-pubsub/server';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { httpPublish, sleep, startTestServer, until, withServer } from '../support/env';

const ctx = withServer();

/** Publishes `n` messages over HTTP, round-robin on `channels`; returns [id, channel] of each, in id order. */
async function publish(channels: string[], n: number, server: { url: string } = ctx.server): Promise<[number, string][]> {
  const messages = Array.from({ length: n }, (_, i) => ({ ch: channels[i % channels.length] as string, data: { i } }));
  const r = await httpPublish(server, { messages });
  expect(r.status).toBe(200);
  return (r.body.ids as number[]).map((id, i) => [id, messages[i]?.ch as string]);
}
/** The ids of those published on a channel starting with `prefix` (all of them without one), in id order. */
const ids = (published: [number, string][], prefix = '') => published.filter(([, ch]) => ch.startsWith(prefix)).map(([id]) => id);

/** An SDK client on SSE only (or as `extra` says), recording what it processed, its states, errors and transports. */
function sseClient(recipient: string, extra: Partial<Parameters<typeof createClient>[0]> = {}) {
  const seen: number[] = [];
  const replayed: boolean[] = [];
  const states: ClientState[] = [];
  const transports: (string | null)[] = [];
  const errors: string[] = [];
  const c = createClient({
    url: ctx.server.wsUrl,
    recipient,
    storage: memoryStorage(),
    sse: SseSocket,
    transports: ['sse'],
    WebSocket,
    backoffMin: 20,
    backoffMax: 200,
    ...extra,
  });
  c.on('state', (e) => {
    states.push(e.newState);
    if (e.newState === 'live') transports.push(c.transport);
  });
  c.on('error', (e) => void errors.push(e.code));
  const on = (pattern: string, into = seen) =>
    c.subscribe(pattern, (m) => {
      into.push(m.id);
      if (into === seen) replayed.push(m.replayed);
    });
  return { c, on, seen, replayed, states, transports, errors };
}

const live = (c: { state: ClientState }) => until(() => c.state === 'live', 15_000, 'live');

/** The pattern sets of a recipient with an open connection, as GET /v1/recipients lists them. */
async function connectedSets(recipient: string): Promise<string[][]> {
  const { recipients } = (await (await fetch(`${ctx.server.url}/v1/recipients`)).json()) as { recipients: any[] };
  const r = recipients.find((x) => x.name === recipient);
  return (r?.sets ?? []).filter((set: any) => set.connections > 0).map((set: any) => set.patterns);
}

/** `Base`, whose sockets call `onHello` once the hello has been sent. */
function hooked(Base: WebSocketConstructor, onHello: () => void): WebSocketConstructor {
  return new Proxy(Base, {
    construct(target, [url]: [string]) {
      const socket = new target(url);
      const send = socket.send.bind(socket);
      socket.send = (data: string) => {
        send(data);
        if (data.includes('"op":"hello"')) onHello();
      };
      return socket;
    },
  });
}

describe('SDK over SSE', () => {
  it('receives the catch-up, then live messages, exactly: every id once, in order, replayed ones marked', async () => {
    const before = await publish(['sse.c.a', 'other.c', 'sse.c.b'], 45);
    const { c, on, seen, replayed, states, transports, errors } = sseClient('sse-catchup', { from: 'earliest' });
    on('sse.c.*');
    await live(c);
    const after = await publish(['sse.c.b', 'sse.c.a', 'other.c'], 45);
    await until(() => seen.length === 60, 10_000, 'every message');
    expect(seen).toEqual([...ids(before, 'sse.c.'), ...ids(after, 'sse.c.')]);
    expect(replayed).toEqual([...Array(30).fill(true), ...Array(30).fill(false)]);
    expect([states, transports, errors, c.duplicatesDropped]).toEqual([['catching-up', 'live'], ['sse'], [], 0]);
    c.close();
  });

  it('publishes over HTTP, in order: the stored id, the first id again for a repeated key, a refusal as a ClientError', async () => {
    const { c, on, seen, errors } = sseClient('sse-pub');
    on('sse.p');
    await live(c);
    const first = await c.publish('sse.p', 1);
    const keyed = await c.publish('sse.p', 2, { key: 'sse-k1' });
    expect(await c.publish('sse.p', 3, { key: 'sse-k1' })).toBe(keyed);
    // Made at once, sent one at a time: stored in the order they were made.
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => c.publish('sse.p', i)));
    expect(many).toEqual(Array.from({ length: 20 }, (_, i) => (many[0] as number) + i));
    await expect(c.publish('', 1)).rejects.toMatchObject({ name: 'ClientError', code: 'bad_request' });
    await until(() => seen.length === 22, 10_000, 'its own messages');
    expect(seen).toEqual([first, keyed, ...many]);
    expect([c.state, c.transport, errors]).toEqual(['live', 'sse', []]);
    c.close();
  });

  it('acks over HTTP: the stored position of its pattern set moves while the stream stays open', async () => {
    const { c, on, seen, states } = sseClient('sse-ack');
    on('sse.k');
    await live(c);
    const published = ids(await publish(['sse.k'], 25));
    await until(() => seen.length === 25, 10_000, 'every message');
    c.flush();
    const set = async () => {
      const { recipients } = (await (await fetch(`${ctx.server.url}/v1/recipients`)).json()) as { recipients: any[] };
      return recipients.find((r) => r.name === 'sse-ack')?.sets[0];
    };
    await until(async () => (await set())?.lastAckedId === published[24], 10_000, 'the ack stored');
    expect(await set()).toEqual({ patterns: ['sse.k'], lastAckedId: published[24], lag: 0, lastSeen: expect.any(Number), connections: 1 });
    expect(states).toEqual(['catching-up', 'live']); // one stream all along: the ack, not a reconnect, stored it
    c.close();
  });

  it('resumes after the server closes the stream (shutdown) from where its handler stopped: no loss, no duplicate', async () => {
    const port = await freePort();
    const env = { PORT: String(port) };
    let server = await startTestServer(ctx.redis.url, env);
    const { c, on, seen, states } = sseClient('sse-resume', { url: `ws://127.0.0.1:${port}/ws` });
    on('sse.r');
    await live(c);
    const expected = ids(await publish(['sse.r'], 20, server));
    await until(() => seen.length === 20, 10_000, 'the first messages');
    await server.stop();
    await until(() => c.state === 'reconnecting', 10_000, 'reconnecting');
    // Stored while no server runs, straight into Redis.
    for (let i = 0; i < 15; i++)
      expected.push(
        Number(((await ctx.redis.client.call('FCALL', 'dps_publish', '1', 'dps:{default}', 'sse.r', `{"d":${i}}`)) as number[])[0]),
      );
    server = await startTestServer(ctx.redis.url, env);
    await live(c);
    expected.push(...ids(await publish(['sse.r'], 10, server)));
    await until(() => seen.length === expected.length, 15_000, 'everything');
    expect(seen).toEqual(expected);
    expect([states[0], states[1], states[2], states.at(-1), c.duplicatesDropped]).toEqual([
      'catching-up',
      'live',
      'reconnecting',
      'live',
      0,
    ]);
    c.close();
    await server.stop();
  });

  it('survives sub() while streaming: one reconnect for a burst of them, every message of every pattern exactly', async () => {
    const { c, on, states } = sseClient('sse-sub');
    const a: number[] = [];
    const b: number[] = [];
    const d: number[] = [];
    on('sse.s.a', a);
    await live(c);
    const a1 = ids(await publish(['sse.s.a'], 10));
    await until(() => a.length === 10, 10_000, 'the first messages');
    const mark = states.length;
    on('sse.s.b', b);
    on('sse.s.d', d);
    // Published while the stream is replaced: the new one resumes from the handlers' position.
    const a2 = ids(await publish(['sse.s.a'], 10));
    await until(() => states.length === mark + 3, 10_000, 'the reconnect');
    expect(states.slice(mark)).toEqual(['reconnecting', 'catching-up', 'live']);
    const mixed = await publish(['sse.s.a', 'sse.s.b', 'sse.s.d'], 30);
    await until(() => a.length === 30 && b.length === 10 && d.length === 10, 10_000, 'every message');
    expect([a, b, d]).toEqual([[...a1, ...a2, ...ids(mixed, 'sse.s.a')], ids(mixed, 'sse.s.b'), ids(mixed, 'sse.s.d')]);
    expect(states.length).toBe(mark + 3);
    c.close();
  });

  it('with auth on, sends the token as a bearer (a fresh one per stream); a refused token closes the client as on a WebSocket', async () => {
    const secret = 'a-secret-of-the-sse-sdk-test-at-least-32-bytes';
    const server = await startTestServer(ctx.redis.url, { DPS_JWT_SECRET: secret });
    const mint = (sub: string) =>
      new SignJWT({ dps: { sub: ['sse.t.*'], pub: ['sse.t.*'] } })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(sub)
        .setExpirationTime('1h')
        .sign(new TextEncoder().encode(secret));
    let minted = 0;
    const good = sseClient('sse-alice', {
      url: server.wsUrl,
      getToken: () => {
        minted++;
        return mint('sse-alice');
      },
    });
    good.on('sse.t.a');
    await live(good.c);
    const id = await good.c.publish('sse.t.a', 1);
    await expect(good.c.publish('sse.u', 1)).rejects.toMatchObject({ code: 'forbidden' });
    good.on('sse.t.b'); // a new stream: getToken again
    await until(() => good.states.length === 5, 10_000, 'the reconnect');
    const id2 = await good.c.publish('sse.t.b', 2);
    await until(() => good.seen.length === 2, 10_000, 'its messages');
    expect([good.seen, good.states, good.errors, minted]).toEqual([
      [id, id2],
      ['catching-up', 'live', 'reconnecting', 'catching-up', 'live'],
      [],
      2,
    ]);
    good.c.close();

    const bad = sseClient('sse-bob', { url: server.wsUrl, token: await mint('sse-alice') }); // the token of another recipient
    bad.on('sse.t.a');
    await until(() => bad.c.state === 'closed', 10_000, 'closed');
    expect([bad.errors, bad.states]).toEqual([['unauthorized'], ['closed']]);
    await server.stop();
  });

  it('tells the server of a subscribe and an unsubscribe made between the hello and its welcome (WebSocket and SSE)', async () => {
    for (const transport of ['websocket', 'sse'] as const) {
      const p = (x: string) => `sse.w.${transport}.${x}`;
      const seen: string[] = [];
      let inWindow = () => {};
      const onHello = () => {
        inWindow();
        inWindow = () => {};
      };
      const c = createClient({
        url: ctx.server.wsUrl,
        recipient: `sse-window-${transport}`,
        storage: memoryStorage(),
        transports: [transport],
        WebSocket: hooked(WebSocket, onHello),
        sse: hooked(SseSocket, onHello),
      });
      c.subscribe(p('a'), (m) => void seen.push(m.ch));
      const dropped = c.subscribe(p('c'), (m) => void seen.push(m.ch));
      inWindow = () => {
        c.subscribe(p('b'), (m) => void seen.push(m.ch));
        dropped.unsubscribe();
      };
      await until(
        async () => JSON.stringify(await connectedSets(`sse-window-${transport}`)) === JSON.stringify([[p('a'), p('b')]]),
        10_000,
        'the set',
      );
      await live(c);
      await publish([p('a'), p('b'), p('c')], 3);
      await until(() => seen.length === 2, 10_000, 'its messages');
      expect([transport, seen]).toEqual([transport, [p('a'), p('b')]]);
      c.close();
    }
  });

  it('falls back to SSE at once when the WebSocket constructor throws, and when a WebSocket closes before it opens', async () => {
    const deadPort = await freePort();
    const throwing = class {
      constructor() {
        throw new Error('WebSockets are blocked here');
      }
    } as unknown as WebSocketConstructor;
    const refused = class extends WebSocket {
      constructor(_url: string) {
        super(`ws://127.0.0.1:${deadPort}/ws`); // nothing listens: closed (1006) before it ever opened
      }
    };
    for (const [name, WS, expectedStates] of [
      ['throws', throwing, ['catching-up', 'live']],
      ['refused', refused, ['reconnecting', 'catching-up', 'live']],
    ] as const) {
      const { c, on, seen, states, transports, errors } = sseClient(`sse-fallback-${name}`, {
        WebSocket: WS,
        transports: ['websocket', 'sse'],
      });
      on(`sse.f.${name}`);
      await live(c);
      const published = ids(await publish([`sse.f.${name}`], 20));
      await until(() => seen.length === 20, 10_000, 'every message');
      expect([name, seen, states, transports, errors]).toEqual([name, published, expectedStates, ['sse'], []]);
      c.close();
    }
  });

  it('moves back to a WebSocket once one opens again (wsRetry), losing nothing and repeating nothing across the switch', async () => {
    let blocked = true;
    class Flaky extends WebSocket {
      constructor(url: string) {
        if (blocked) throw new Error('WebSockets are blocked here');
        super(url);
      }
    }
    const { c, on, seen, transports, errors } = sseClient('sse-back', { WebSocket: Flaky, transports: undefined, wsRetry: 50 });
    on('sse.b');
    await live(c);
    expect(c.transport).toBe('sse');
    const expected: number[] = [];
    let publishing = true;
    const feed = (async () => {
      while (publishing) {
        expected.push(...ids(await publish(['sse.b'], 5)));
        await sleep(10);
      }
    })();
    await until(() => seen.length >= 30, 10_000, 'messages over SSE');
    blocked = false;
    await until(() => c.transport === 'websocket' && c.state === 'live', 15_000, 'back on a WebSocket');
    const switched = seen.length;
    await until(() => seen.length >= switched + 30, 10_000, 'messages over the WebSocket');
    publishing = false;
    await feed;
    await until(() => seen.length === expected.length, 10_000, 'everything');
    expect(seen).toEqual(expected);
    expect([transports[0], transports.at(-1), errors]).toEqual(['sse', 'websocket', []]);
    c.close();
  });
});
