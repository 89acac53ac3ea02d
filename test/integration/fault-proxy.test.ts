// Proves each mode of the test fault proxy with real sockets: ioredis against a real redis-server, and plain TCP peers.
import net, { type Socket } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sleep, startTestRedis, type TestRedis, until } from '../support/env';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';

/** One end of a raw TCP connection, recording what it saw. */
interface Peer {
  socket: Socket;
  chunks: Buffer[];
  text(): string;
  ended: boolean;
  closed: boolean;
  error: string | undefined;
}

function watch(socket: Socket): Peer {
  const peer: Peer = {
    socket,
    chunks: [],
    text: () => Buffer.concat(peer.chunks).toString(),
    ended: false,
    closed: false,
    error: undefined,
  };
  socket.on('data', (d: Buffer) => peer.chunks.push(d));
  socket.on('end', () => (peer.ended = true));
  socket.on('close', () => (peer.closed = true));
  socket.on('error', (e: NodeJS.ErrnoException) => (peer.error ??= e.code));
  return peer;
}

/** A TCP server whose accepted sockets the test drives by hand (`echo` makes it write back what it reads). */
async function tcpServer(echo: boolean): Promise<{ server: net.Server; port: number; accepted: Peer[] }> {
  const accepted: Peer[] = [];
  const server = net.createServer((s) => {
    const peer = watch(s);
    if (echo) s.on('data', (d: Buffer) => s.write(d));
    accepted.push(peer);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as net.AddressInfo).port, accepted };
}

let redis: TestRedis;
let sink: Awaited<ReturnType<typeof tcpServer>>;
let echo: Awaited<ReturnType<typeof tcpServer>>;
const cleanups: (() => unknown)[] = [];
let n = 0;
const key = () => `fault-proxy:${process.pid}:${++n}`;

beforeAll(async () => {
  redis = await startTestRedis();
  sink = await tcpServer(false);
  echo = await tcpServer(true);
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  for (const s of [sink, echo]) {
    for (const p of s?.accepted ?? []) p.socket.destroy();
    await new Promise((r) => s?.server.close(r));
  }
  await redis?.cleanup();
});

async function proxyTo(port: number): Promise<FaultProxy> {
  const proxy = await startFaultProxy({ port });
  cleanups.push(() => proxy.close());
  return proxy;
}

function redisVia(proxy: FaultProxy, opts: RedisOptions = {}): Redis {
  const client = new Redis(proxy.url(), { protocol: 2, retryStrategy: () => 20, ...opts });
  client.on('error', () => {}); // asserted where it matters; otherwise ioredis would log it
  cleanups.push(() => client.disconnect());
  return client;
}

/** Connects through `proxy`; resolves once connected (whether or not an upstream exists) or already closed again. */
async function rawVia(proxy: FaultProxy): Promise<Peer> {
  const socket = net.connect({ host: '127.0.0.1', port: proxy.port, noDelay: true });
  const peer = watch(socket);
  cleanups.push(() => socket.destroy());
  await until(() => !socket.connecting || peer.closed, 2000, 'the proxy to accept');
  return peer;
}

/** The server side of the next connection `server` accepts. */
async function nextAccepted(server: { accepted: Peer[] }, before: number): Promise<Peer> {
  await until(() => server.accepted.length > before, 2000, 'the upstream to accept');
  return server.accepted[before]!;
}

/** Resolves to 'settled' or 'pending' after `ms`, without leaving a rejection unhandled. */
function settledWithin(p: Promise<unknown>, ms: number): Promise<'settled' | 'pending'> {
  return Promise.race([
    p.then(
      () => 'settled' as const,
      () => 'settled' as const,
    ),
    sleep(ms).then(() => 'pending' as const),
  ]);
}

describe('pass', () => {
  it('forwards Redis commands and counts the open pair', async () => {
    const proxy = await proxyTo(redis.port);
    expect(proxy.url()).toBe(`redis://127.0.0.1:${proxy.port}`);
    expect(proxy.url('tcp')).toBe(`tcp://127.0.0.1:${proxy.port}`);
    const client = redisVia(proxy);
    const k = key();
    expect(await client.set(k, 'v1')).toBe('OK');
    expect(await client.get(k)).toBe('v1');
    expect(await redis.client.get(k)).toBe('v1');
    expect(proxy.connections).toBe(1);
    client.disconnect();
    await until(() => proxy.connections === 0, 2000, 'the pair to close');
  });

  it('keeps byte order both ways and forwards a FIN', async () => {
    const proxy = await proxyTo(sink.port);
    const before = sink.accepted.length;
    const client = await rawVia(proxy);
    const server = await nextAccepted(sink, before);
    for (let i = 0; i < 100; i++) client.socket.write(`u${i};`);
    for (let i = 0; i < 100; i++) server.socket.write(`d${i};`);
    const want = (p: string) => Array.from({ length: 100 }, (_, i) => `${p}${i};`).join('');
    await until(() => server.text() === want('u') && client.text() === want('d'), 2000, 'both streams');
    client.socket.end();
    await until(() => server.ended, 2000, 'the FIN');
  });

  it('applies backpressure: a peer that stops reading stops the proxy reading too', async () => {
    const proxy = await proxyTo(sink.port);
    const before = sink.accepted.length;
    const client = await rawVia(proxy);
    const server = await nextAccepted(sink, before);
    server.socket.pause();
    const payload = Buffer.alloc(32 * 1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
    client.socket.write(payload);
    await sleep(300);
    // Without backpressure the proxy would have read everything the kernel buffers could not hold, tens of MB.
    expect(proxy.buffered).toBeLessThan(1024 * 1024);
    server.socket.resume();
    await until(() => server.chunks.reduce((s, c) => s + c.length, 0) >= payload.length, 10_000, 'all bytes');
    expect(Buffer.concat(server.chunks).equals(payload)).toBe(true);
  });
});

describe('silent', () => {
  it('holds a Redis command without the client noticing, and delivers it after pass()', async () => {
    const proxy = await proxyTo(redis.port);
    const client = redisVia(proxy);
    expect(await client.ping()).toBe('PONG');
    let closed = false;
    client.on('close', () => (closed = true));
    const k = key();
    proxy.silent();
    const set = client.set(k, 'held');
    expect(await settledWithin(set, 500)).toBe('pending');
    expect(client.status).toBe('ready');
    expect(closed).toBe(false);
    expect(await redis.client.get(k)).toBeNull();
    proxy.pass();
    expect(await set).toBe('OK');
    expect(await redis.client.get(k)).toBe('held');
    expect(closed).toBe(false);
  });

  it('holds bytes and FIN both ways; new connections connect upstream but stay silent', async () => {
    const proxy = await proxyTo(sink.port);
    const before = sink.accepted.length;
    const client = await rawVia(proxy);
    const server = await nextAccepted(sink, before);
    proxy.silent();
    client.socket.write('up1');
    server.socket.write('down1');
    server.socket.end();
    client.socket.write('up2');
    const late = await rawVia(proxy);
    const lateServer = await nextAccepted(sink, before + 1);
    late.socket.write('late');
    await until(() => proxy.buffered === 'up1up2down1late'.length, 2000, 'the proxy to hold every byte');
    await sleep(300);
    expect([client.text(), client.ended, client.closed, client.error]).toEqual(['', false, false, undefined]);
    expect([server.text(), server.closed]).toEqual(['', false]);
    expect(lateServer.text()).toBe('');
    proxy.pass();
    await until(() => client.ended && server.text() === 'up1up2' && lateServer.text() === 'late', 2000, 'the held bytes');
    expect(client.text()).toBe('down1');
  });

  it('with discard: a command sent during the silence is never executed, even after pass()', async () => {
    const proxy = await proxyTo(redis.port);
    const client = redisVia(proxy, { commandTimeout: 300 });
    expect(await client.ping()).toBe('PONG');
    const k = key();
    proxy.silent({ discard: true });
    await expect(client.set(k, 'lost')).rejects.toThrow(/timed out/i);
    expect(client.status).toBe('ready');
    proxy.pass();
    await sleep(300);
    expect(await redis.client.get(k)).toBeNull();
  });

  it('with discard: drops bytes already held and any sent meanwhile, both ways; later bytes flow', async () => {
    const proxy = await proxyTo(sink.port);
    const before = sink.accepted.length;
    const client = await rawVia(proxy);
    const server = await nextAccepted(sink, before);
    proxy.silent();
    client.socket.write('held-then-dropped');
    await until(() => proxy.buffered > 0, 2000, 'the proxy to hold the bytes');
    proxy.silent({ discard: true });
    expect(proxy.buffered).toBe(0);
    client.socket.write('dropped');
    server.socket.write('dropped');
    await sleep(200);
    expect(proxy.buffered).toBe(0);
    proxy.pass();
    client.socket.write('after');
    server.socket.write('after');
    await until(() => server.text() === 'after' && client.text() === 'after', 2000, 'the later bytes');
  });
});

describe('partition', () => {
  it('a new connection never becomes ready, existing ones lose their bytes; both recover after pass()', async () => {
    const proxy = await proxyTo(redis.port);
    const existing = redisVia(proxy, { commandTimeout: 300 });
    expect(await existing.ping()).toBe('PONG');
    const k = key();
    proxy.partition();
    const fresh = redisVia(proxy);
    const ready = new Promise((r) => fresh.once('ready', r));
    await expect(existing.set(k, 'lost')).rejects.toThrow(/timed out/i);
    expect(await settledWithin(ready, 500)).toBe('pending');
    expect(fresh.status).toBe('connect'); // TCP accepted by the proxy, the ready check unanswered
    expect(proxy.connections).toBe(2);
    proxy.pass();
    await ready;
    expect(await fresh.ping()).toBe('PONG');
    expect(await redis.client.get(k)).toBeNull();
  });

  it('never connects a new connection upstream while it lasts, then delivers its bytes', async () => {
    const proxy = await proxyTo(sink.port);
    proxy.partition();
    const before = sink.accepted.length;
    const client = await rawVia(proxy);
    client.socket.write('hello');
    await sleep(300);
    expect(sink.accepted.length).toBe(before);
    expect(client.closed).toBe(false);
    proxy.pass();
    const server = await nextAccepted(sink, before);
    await until(() => server.text() === 'hello', 2000, 'the held bytes');
  });
});

describe('reset', () => {
  it('RSTs an open ioredis connection promptly; it reconnects through the proxy', async () => {
    const proxy = await proxyTo(redis.port);
    const client = redisVia(proxy);
    expect(await client.ping()).toBe('PONG');
    const errors: string[] = [];
    client.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
    const closed = new Promise((r) => client.once('close', r));
    proxy.reset();
    expect(await settledWithin(closed, 1000)).toBe('settled');
    expect(errors).toContain('ECONNRESET');
    await until(() => client.status === 'ready', 2000, 'the reconnect');
    const k = key();
    expect(await client.set(k, 'after')).toBe('OK');
    expect(await redis.client.get(k)).toBe('after');
    expect(proxy.connections).toBe(1);
  });

  it('sends a RST to both sides', async () => {
    const proxy = await proxyTo(sink.port);
    const before = sink.accepted.length;
    const client = await rawVia(proxy);
    const server = await nextAccepted(sink, before);
    proxy.reset();
    await until(() => client.closed && server.closed, 2000, 'both sides to close');
    expect([client.error, server.error]).toEqual(['ECONNRESET', 'ECONNRESET']);
    expect(proxy.connections).toBe(0);
  });

  it('is an action: new connections afterwards get the current mode', async () => {
    const proxy = await proxyTo(echo.port);
    proxy.silent();
    const old = await rawVia(proxy);
    proxy.reset();
    await until(() => old.closed, 2000, 'the old connection to close');
    const client = await rawVia(proxy);
    client.socket.write('ping');
    await sleep(300);
    expect([client.text(), client.closed]).toEqual(['', false]);
    proxy.pass();
    await until(() => client.text() === 'ping', 2000, 'the echo');
  });
});

describe('latency', () => {
  it('delays each direction: a PING round trip costs 2 × 200 ms, 20 pipelined commands stay correct and in order', async () => {
    const proxy = await proxyTo(redis.port);
    const client = redisVia(proxy);
    expect(await client.ping()).toBe('PONG');
    proxy.latency(200);
    let t0 = performance.now();
    expect(await client.ping()).toBe('PONG');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(390);
    const list = key();
    const pipeline = client.pipeline();
    for (let i = 0; i < 20; i++) pipeline.rpush(list, String(i));
    t0 = performance.now();
    const results = await pipeline.exec();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(390);
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => [null, i + 1]));
    expect(await redis.client.lrange(list, 0, -1)).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
  });

  it('never reorders: many small chunks, and bytes sent after the delay is lifted wait behind delayed ones', async () => {
    const proxy = await proxyTo(echo.port);
    const client = await rawVia(proxy);
    proxy.latency(30);
    let want = '';
    for (let i = 0; i < 200; i++) {
      client.socket.write(`${i},`);
      want += `${i},`;
      if (i % 20 === 0) await sleep(1);
    }
    await until(() => client.text() === want, 5000, 'the echoed stream');
    proxy.latency(150);
    client.socket.write('A');
    await until(() => proxy.buffered === 1, 2000, 'A to be queued');
    proxy.pass();
    client.socket.write('B');
    await until(() => client.text().length === want.length + 2, 2000, 'A and B');
    expect(client.text().slice(want.length)).toBe('AB');
  });
});

describe('blockNew and close', () => {
  it('blockNew(true) resets new connections only', async () => {
    const proxy = await proxyTo(echo.port);
    const old = await rawVia(proxy);
    proxy.blockNew(true);
    const refused = await rawVia(proxy);
    await until(() => refused.closed, 2000, 'the refused connection to close');
    expect(refused.error).toBe('ECONNRESET');
    old.socket.write('still');
    await until(() => old.text() === 'still', 2000, 'the old connection to echo');
    proxy.blockNew(false);
    const fresh = await rawVia(proxy);
    fresh.socket.write('ok');
    await until(() => fresh.text() === 'ok', 2000, 'the new connection to echo');
  });

  it('resets the client when the target is down', async () => {
    const down = await tcpServer(false);
    await new Promise((r) => down.server.close(r));
    const proxy = await proxyTo(down.port);
    const client = await rawVia(proxy);
    await until(() => client.closed, 2000, 'the connection to close');
    expect(client.error).toBe('ECONNRESET');
  });

  it('close() destroys every connection and stops listening', async () => {
    const proxy = await proxyTo(echo.port);
    const client = await rawVia(proxy);
    proxy.silent();
    await proxy.close();
    await until(() => client.closed, 2000, 'the connection to close');
    const refused = net.connect({ host: '127.0.0.1', port: proxy.port });
    const err = await new Promise<NodeJS.ErrnoException>((r) => refused.once('error', r));
    expect(err.code).toBe('ECONNREFUSED');
  });
});
