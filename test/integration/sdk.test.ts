// The SDK in Node against the real server process and real Redis: reconnects, crashes, failing handlers, manual acks.
import {
  type Client,
  type ClientState,
  createClient,
  memoryStorage,
  type PositionStorage,
  type WebSocketConstructor,
} from '@durable-pubsub/client-sdk';
import { Store } from '@durable-pubsub/server';
import { commandConnection, connect } from '@durable-pubsub/server/src/redis/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { type ServerProcess, serverProcess, startTestRedis, type TestRedis, until } from '../support/env';

let redis: TestRedis;
let server: ServerProcess;
let store: Store;
let cmd: ReturnType<typeof commandConnection> | undefined;

beforeAll(async () => {
  redis = await startTestRedis();
  server = await serverProcess(redis.url);
  cmd = commandConnection(redis.url);
  await connect(cmd);
  store = new Store(cmd, { namespace: 'default', retentionMaxLen: 100_000, idempotencyWindowSec: 60 });
  await store.init();
});
afterAll(async () => {
  cmd?.disconnect();
  await server?.stop();
  await redis?.cleanup();
});

/** Publishes straight into the store (works while the server process is down). */
async function publish(ch: string, n: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) ids.push((await store.publish(ch, { i })).id);
  return ids;
}

/** `ws`'s WebSocket, keeping the last socket a client opened, so that a test can drop it as a flaky network would. */
function droppable(): { WebSocket: WebSocketConstructor; drop(): void } {
  let last: WebSocket | undefined;
  class Kept extends WebSocket {
    constructor(url: string) {
      super(url);
      last = this;
    }
  }
  return { WebSocket: Kept, drop: () => last?.close() };
}

function client(recipient: string, patterns: string[], extra: Partial<Parameters<typeof createClient>[0]> = {}) {
  const seen: number[] = [];
  const states: ClientState[] = [];
  const socket = droppable();
  const c = createClient({
    url: server.wsUrl,
    recipient,
    storage: memoryStorage(),
    WebSocket: socket.WebSocket,
    backoffMin: 20,
    backoffMax: 200,
    ...extra,
  });
  c.on('state', (e) => states.push(e.newState));
  for (const p of patterns) c.subscribe(p, (m) => void seen.push(m.id));
  return { c, seen, states, drop: socket.drop };
}

const live = (c: Client) => until(() => c.state === 'live', 15_000, 'live');

describe('SDK in Node', () => {
  it('keeps a position per pattern set: a view that comes back resumes from its own, not from another view of the recipient', async () => {
    const storage = memoryStorage(); // one browser's localStorage
    const phone = client('sdk-views', ['sdk.v.b'], { storage });
    await live(phone.c);
    const b1 = await publish('sdk.v.b', 3);
    await until(() => phone.seen.length === 3, 5000, 'the phone view');
    phone.c.close();
    const desktop = client('sdk-views', ['sdk.v.a'], { storage });
    await live(desktop.c);
    const b2 = await publish('sdk.v.b', 4);
    const a1 = await publish('sdk.v.a', 5);
    await until(() => desktop.seen.length === 5, 5000, 'the desktop view');
    desktop.c.close();
    expect(desktop.seen).toEqual(a1);
    // Back on the phone's view: from its own saved position (b1's last), although the desktop's is newer.
    const back = client('sdk-views', ['sdk.v.b'], { storage });
    await live(back.c);
    expect([phone.seen, back.seen]).toEqual([b1, b2]);
    expect(storage.get(`dps:${server.wsUrl}|sdk-views|["sdk.v.a"]`)?.lastAckedId).toBe(a1[4]);
    expect(storage.get(`dps:${server.wsUrl}|sdk-views|["sdk.v.b"]`)?.lastAckedId).toBe(b2[3]);
    back.c.close();
  });

  it('a frame it cannot parse (a message stored around the checks, in a catch-up batch) costs no good message and never sticks', async () => {
    const good1 = await publish('sdk.p.x', 50);
    // What the old any-client EVAL path could store: data that is not JSON, between good messages.
    const bad = await redis.client.incr('dps:{default}:seq');
    await redis.client.zadd('dps:{default}:ch:sdk.p.x', bad, `{"op":"msg","id":${bad},"ch":"sdk.p.x","data":{oops,"ts":1}`);
    await redis.client.zadd('dps:{default}:index', bad, 'sdk.p.x');
    const good2 = await publish('sdk.p.x', 50);
    const gaps: { ch: string; after: number; upTo: number }[] = [];
    const errors: string[] = [];
    const { c, seen } = client('sdk-poison', ['sdk.p.*'], { from: 'earliest' });
    c.on('gap', (g) => void gaps.push(g));
    c.on('error', (e) => void errors.push(e.code));
    await live(c);
    await until(() => seen.length === 100, 10_000, 'every good message');
    expect(seen).toEqual([...good1, ...good2]);
    expect(gaps).toEqual([{ ch: 'sdk.p.x', after: bad - 1, upTo: bad }]);
    expect(errors).toEqual(['bad_frame']);
    const more = await publish('sdk.p.x', 3);
    await until(() => seen.length === 103, 5000, 'live after it');
    expect(seen.slice(100)).toEqual(more);
    c.close();
  });

  it('a stored frame that is JSON but not a msg frame is a bad frame once, then a gap, never a reconnect loop', async () => {
    const good1 = await publish('sdk.q.x', 20);
    // JSON, but the guard refuses it (no ts, a string id): written around the server's checks.
    const bad = await redis.client.incr('dps:{default}:seq');
    await redis.client.zadd('dps:{default}:ch:sdk.q.x', bad, `{"op":"msg","id":"${bad}","ch":"sdk.q.x","data":1}`);
    await redis.client.zadd('dps:{default}:index', bad, 'sdk.q.x');
    const good2 = await publish('sdk.q.x', 20);
    const gaps: { ch: string; after: number; upTo: number }[] = [];
    const errors: string[] = [];
    const { c, seen } = client('sdk-shape', ['sdk.q.*'], { from: 'earliest' });
    c.on('gap', (g) => void gaps.push(g));
    c.on('error', (e) => void errors.push(e.code));
    await live(c);
    await until(() => seen.length === 40, 10_000, 'every good message');
    expect([seen, gaps, errors]).toEqual([[...good1, ...good2], [{ ch: 'sdk.q.x', after: bad - 1, upTo: bad }], ['bad_frame']]);
    c.close();
  });

  it('reconnects when the server drops it and delivers the exact sequence, no duplicates', async () => {
    const { c, seen, states, drop } = client('sdk-reconnect', ['sdk.r.*']);
    await live(c);
    const expected: number[] = [];
    for (let round = 0; round < 5; round++) {
      expected.push(...(await publish('sdk.r.a', 20)));
      drop(); // mid-stream, as a flaky network would
      expected.push(...(await publish('sdk.r.b', 10)));
      await until(() => seen.length === expected.length, 10_000, 'round delivered');
    }
    expect(seen).toEqual(expected);
    expect(c.duplicatesDropped).toBe(0);
    expect(states.filter((s) => s === 'reconnecting').length).toBe(5);
    c.close();
    expect(c.state).toBe('closed');
  });

  it('survives the server process being killed mid-stream and restarted: no loss, no duplicate to the handler', async () => {
    const { c, seen } = client('sdk-crash', ['sdk.k']);
    await live(c);
    const expected = await publish('sdk.k', 50);
    await until(() => seen.length >= 20, 10_000, 'some delivered');
    await server.kill();
    expected.push(...(await publish('sdk.k', 50))); // stored while no server runs
    await until(() => c.state === 'reconnecting', 5000, 'reconnecting');
    await server.start();
    await live(c);
    expected.push(...(await publish('sdk.k', 10)));
    await until(() => seen.length === expected.length, 15_000, 'everything delivered');
    expect(seen).toEqual(expected);
    c.close();
  });

  it('does not advance the position past a message whose handler throws; it is delivered again', async () => {
    const storage: PositionStorage = memoryStorage();
    const calls: number[] = [];
    const errors: string[] = [];
    const c = createClient({
      url: server.wsUrl,
      recipient: 'sdk-throws',
      storage,
      WebSocket,
      backoffMin: 20,
      backoffMax: 100,
    });
    c.on('error', (e) => errors.push(e.code));
    let failOn = 0;
    let positionWhenFailing = -1;
    c.subscribe('sdk.t', (m) => {
      calls.push(m.id);
      if (m.id === failOn) {
        failOn = -1;
        positionWhenFailing = c.lastAckedId;
        throw new Error('boom');
      }
    });
    await live(c);
    const target = (await store.head()) + 3; // the third message about to be published
    failOn = target;
    const ids = await publish('sdk.t', 6);
    expect(ids[2]).toBe(target);
    await until(() => calls.length === 7, 10_000, 'redelivery');
    expect(calls).toEqual([ids[0], ids[1], ids[2], ids[2], ids[3], ids[4], ids[5]]);
    expect(positionWhenFailing).toBe(ids[1]);
    expect(errors).toEqual(['handler']);
    await until(() => c.lastAckedId === ids[5], 5000, 'position');
    c.close();
  });

  it('waits for a handler that returns a promise: one message at a time, in order, and live after the backlog', async () => {
    const backlog = await publish('sdk.as.a', 30);
    const log: string[] = [];
    const c = createClient({
      url: server.wsUrl,
      recipient: 'sdk-async',
      from: 'earliest',
      storage: memoryStorage(),
      WebSocket,
    });
    c.on('state', (e) => log.push(e.newState));
    // Every third message is handled asynchronously, the others synchronously; a second handler follows it.
    c.subscribe('sdk.as.*', (m) => {
      log.push(`a ${m.id}`);
      if (m.id % 3) return;
      return new Promise<void>((resolve) =>
        setTimeout(() => {
          log.push(`a done ${m.id}`);
          resolve();
        }, 2),
      );
    });
    c.subscribe('sdk.as.a', (m) => void log.push(`b ${m.id}`));
    await live(c);
    const more = await publish('sdk.as.a', 12);
    await until(() => log.includes(`b ${more.at(-1)}`), 10_000, 'all handled');
    const handled = (ids: number[]) => ids.flatMap((id) => [`a ${id}`, ...(id % 3 ? [] : [`a done ${id}`]), `b ${id}`]);
    expect(log).toEqual(['catching-up', ...handled(backlog), 'live', ...handled(more)]);
    await until(() => c.lastAckedId === more.at(-1), 5000, 'position');
    c.close();
  });

  it('acks the position its catch-up reached as it goes live, not an ack interval later', async () => {
    const backlog = await publish('sdk.cu.a', 40);
    const { c, seen } = client('sdk-catchup-ack', ['sdk.cu.*'], { from: 'earliest', ackInterval: 60_000, ackBatch: 100_000 });
    await live(c);
    expect(seen).toEqual(backlog);
    const acked = async () => (await store.subscriptions.list()).find((r) => r.name === 'sdk-catchup-ack')?.acked;
    await until(async () => (await acked()) === backlog.at(-1), 3000, 'the catch-up acked');
    c.close();
  });

  it('treats a rejected promise from a handler as a throw: the message comes again', async () => {
    const calls: number[] = [];
    const errors: string[] = [];
    const { c } = client('sdk-rejects', []);
    c.on('error', (e) => errors.push(e.code));
    let failOn = -1;
    c.subscribe('sdk.rj', async (m) => {
      calls.push(m.id);
      await new Promise((r) => setTimeout(r, 1));
      if (m.id === failOn) {
        failOn = -1;
        throw new Error('async boom');
      }
    });
    await live(c);
    failOn = (await store.head()) + 2;
    const ids = await publish('sdk.rj', 4);
    await until(() => calls.length === 5, 10_000, 'redelivery');
    expect(calls).toEqual([ids[0], ids[1], ids[1], ids[2], ids[3]]);
    expect(errors).toEqual(['handler']);
    c.close();
  });

  it('manual ack mode: unacked messages come again after a reconnect, acked ones never', async () => {
    const calls: number[] = [];
    const socket = droppable();
    const c = createClient({
      url: server.wsUrl,
      recipient: 'sdk-manual',
      storage: memoryStorage(),
      ackMode: 'manual',
      WebSocket: socket.WebSocket,
      backoffMin: 20,
    });
    let ackUpTo = 0;
    c.subscribe('sdk.m', (m, ctx) => {
      calls.push(m.id);
      if (m.id <= ackUpTo) ctx.ack();
    });
    await live(c);
    ackUpTo = (await store.head()) + 3;
    const ids = await publish('sdk.m', 5);
    await until(() => calls.length === 5, 10_000, 'first delivery');
    expect(c.lastAckedId).toBe(ids[2]);
    ackUpTo = ids[4] as number;
    socket.drop();
    await until(() => calls.length === 7, 10_000, 'redelivery of the unacked');
    expect(calls).toEqual([...ids, ids[3], ids[4]]);
    await until(async () => Number(await redis.client.hget('dps:{default}:r:sdk-manual', 'acked')) === ids[4], 5000, 'the ack stored');
    c.close();
  });

  it('queues publishes while disconnected and sends them once after reconnecting', async () => {
    const { c, seen } = client('sdk-pub', ['sdk.p']);
    await live(c);
    const first = await c.publish('sdk.p', { n: 1 });
    await server.kill();
    await until(() => c.state === 'reconnecting', 5000, 'reconnecting');
    const queued = [c.publish('sdk.p', { n: 2 }), c.publish('sdk.p', { n: 3 }, { key: 'fixed-key' })];
    await server.start();
    const ids = await Promise.all(queued);
    expect(ids).toEqual([first + 1, first + 2]);
    expect(await c.publish('sdk.p', { n: 4 }, { key: 'fixed-key' })).toBe(first + 2); // same key: stored once
    await until(() => seen.length === 3, 10_000, 'delivery');
    expect(seen).toEqual([first, first + 1, first + 2]);
    c.close();
  });

  it('notices a dead connection with ping/pong (server process stopped) and recovers without loss', async () => {
    const { c, seen, states } = client('sdk-ping', ['sdk.d'], { pingInterval: 150, pongTimeout: 150 });
    await live(c);
    const expected = await publish('sdk.d', 5);
    await until(() => seen.length === 5, 5000, 'delivered');
    server.child.kill('SIGSTOP');
    try {
      await until(() => c.state === 'reconnecting', 3000, 'the dead connection to be noticed');
      expected.push(...(await publish('sdk.d', 5)));
    } finally {
      server.child.kill('SIGCONT');
    }
    await live(c);
    await until(() => seen.length === 10, 10_000, 'catch-up');
    expect(seen).toEqual(expected);
    expect(states).toContain('reconnecting');
    c.close();
  });

  it('stops retrying on 4401 and 4403 and says why', async () => {
    for (const code of [4401, 4403]) {
      const wss = new WebSocketServer({ port: 0 });
      let connections = 0;
      wss.on('connection', (ws) => {
        connections++;
        ws.close(code, 'go away');
      });
      const port = (wss.address() as { port: number }).port;
      const errors: string[] = [];
      const c = createClient({
        url: `ws://127.0.0.1:${port}`,
        recipient: 'r',
        storage: memoryStorage(),
        WebSocket,
        backoffMin: 10,
      });
      c.on('error', (e) => errors.push(e.code));
      const pending = c.publish('x', 1).catch((e) => e.code);
      await until(() => c.state === 'closed', 5000, 'closed');
      await new Promise((r) => setTimeout(r, 200));
      expect([connections, errors, await pending]).toEqual([
        1,
        [code === 4401 ? 'unauthorized' : 'forbidden'],
        code === 4401 ? 'unauthorized' : 'forbidden',
      ]);
      wss.close();
    }
  });
});
