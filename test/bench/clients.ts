// How the load generator talks to each system of `pnpm bench`: subscribe sockets and publish.
// P speaks PROTOCOL.md (raw frames, cumulative acks batched like the SDK's); B its one-line
// sub frame; S through socket.io-client; P over SSE as the SDK's SSE transport reads it (GET /v1/sse, acks as
// POST /v1/ack). Every message carries `t`, its publish time on one clock.
import http from 'node:http';
import { Store } from '@durable-pubsub/server';
import { frameId } from '@durable-pubsub/server/src/bridge';
import { commandConnection, connect } from '@durable-pubsub/server/src/redis/connect';
import { Redis } from 'ioredis';
import { io, type Socket } from 'socket.io-client';
import { openFastSse, SseEvent } from './fast-sse';
import { type FastWs, openFastWs, startsWith } from './fast-ws';

export type System = 'P' | 'B' | 'S';

/** How P's readers read: a WebSocket, or an SSE stream (GET /v1/sse). */
export type Transport = 'ws' | 'sse';

/** Milliseconds on a clock shared by every process of the machine. */
export const now = () => performance.timeOrigin + performance.now();

/** A delivered message: P's and B's as the bytes of their frame, S's as the object socket.io decoded. */
export type Delivered = { buf: Buffer; start: number; end: number } | { t: number };

/** The publish time in a delivered message. */
export function sentAt(m: Delivered): number {
  if ('t' in m) return m.t;
  const i = m.buf.indexOf('"t":', m.start);
  return i < 0 || i >= m.end ? Number.NaN : Number.parseFloat(m.buf.toString('latin1', i + 4, Math.min(m.end, i + 24)));
}

export interface Subscription {
  close(): void;
}

/** Cumulative acks as the SDK sends them: 250 ms after the first unacked message, or at 1,000. */
const ACK_MS = 250;
const ACK_EVERY = 1000;

/** How the frames the load looks for begin. */
export const MSG = Buffer.from('{"op":"msg"');
export const LIVE = Buffer.from('{"op":"live"');
const SUBBED = Buffer.from('{"subbed"');

/**
 * One subscribed socket; resolves once it is live. `onMessage` gets each delivered message (for P and B a
 * view valid only during the call: frames are not decoded unless a sample needs it).
 */
export function subscribe(
  system: System,
  base: string,
  patterns: string[],
  name: string,
  onMessage: (m: Delivered) => void,
  transport: Transport = 'ws',
): Promise<Subscription> {
  if (system === 'P' && transport === 'sse') return subscribeSse(base, patterns, name, onMessage);
  if (system === 'S') {
    return new Promise((resolve, reject) => {
      const s: Socket = io(base, { transports: ['websocket'], forceNew: true, reconnection: false });
      s.on('m', onMessage);
      s.once('connect_error', reject);
      s.once('connect', async () => {
        for (const p of patterns) await s.emitWithAck('sub', p);
        resolve({ close: () => s.disconnect() });
      });
    });
  }
  return new Promise((resolve, reject) => {
    let pending = patterns.length;
    let unacked = 0;
    let lastId = 0;
    let ackTimer: NodeJS.Timeout | undefined;
    const ack = () => {
      clearTimeout(ackTimer);
      ackTimer = undefined;
      unacked = 0;
      ws.send(`{"op":"ack","id":${lastId}}`);
    };
    let live: () => void;
    const view: { buf: Buffer; start: number; end: number } = { buf: Buffer.alloc(0), start: 0, end: 0 };
    const onFrame = (buf: Buffer, start: number, end: number) => {
      view.buf = buf;
      view.start = start;
      view.end = end;
      if (system === 'B') {
        if (!startsWith(buf, start, end, SUBBED)) onMessage(view);
        else if (--pending === 0) live();
        return;
      }
      if (startsWith(buf, start, end, MSG)) {
        onMessage(view);
        // Cumulative acks as the SDK sends them: 250 ms after the first unacked message, or at 1,000.
        lastId = frameId(buf, start, end);
        if (++unacked >= ACK_EVERY) ack();
        else ackTimer ??= setTimeout(ack, ACK_MS);
      } else if (startsWith(buf, start, end, LIVE)) live();
    };
    let ws: FastWs;
    openFastWs(system === 'P' ? `${base.replace('http', 'ws')}/ws` : base.replace('http', 'ws'), onFrame).then((opened) => {
      ws = opened;
      live = () =>
        resolve({
          close: () => {
            clearTimeout(ackTimer);
            ws.close();
          },
        });
      if (system === 'P') ws.send(JSON.stringify({ op: 'hello', v: 1, recipient: name, subs: patterns, from: 'head' }));
      else for (const p of patterns) ws.send(JSON.stringify({ sub: p }));
    }, reject);
  });
}

// Acks over HTTP share keep-alive connections (a browser would hold one beside its stream).
const ackAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** The query of GET /v1/sse for a reader of `patterns`. */
export function sseUrl(base: string, recipient: string, patterns: string[], from: 'head' | 'earliest'): string {
  const q = new URLSearchParams({ recipient, from });
  for (const p of patterns) q.append('subs', p);
  return `${base}/v1/sse?${q}`;
}

/**
 * P over SSE: one stream, resolved once live; acks as the SDK's SSE transport sends them (POST /v1/ack with the
 * stream's epoch), cumulative and on the WebSocket's cadence, one request in flight per reader.
 */
function subscribeSse(base: string, patterns: string[], name: string, onMessage: (m: Delivered) => void): Promise<Subscription> {
  const view: { buf: Buffer; start: number; end: number } = { buf: Buffer.alloc(0), start: 0, end: 0 };
  let unacked = 0;
  let lastId = 0;
  let ackedId = 0;
  let inFlight = false;
  let closed = false;
  let ackTimer: NodeJS.Timeout | undefined;
  let epoch = () => '';
  const u = new URL(base);
  const ackTo = {
    host: u.hostname,
    port: u.port,
    path: '/v1/ack',
    method: 'POST',
    agent: ackAgent,
    headers: { 'content-type': 'application/json' },
  };
  const ack = () => {
    clearTimeout(ackTimer);
    ackTimer = undefined;
    unacked = 0;
    if (inFlight || closed || lastId <= ackedId) return;
    inFlight = true;
    const id = lastId;
    const body = JSON.stringify({ recipient: name, subs: patterns, id: `${epoch()}:${id}` });
    const req = http.request(ackTo, (res) => {
      res.resume();
      res.on('end', () => {
        inFlight = false;
        ackedId = id;
        // What came meanwhile goes in the next ack.
        if (lastId > ackedId && !closed) ackTimer ??= setTimeout(ack, ACK_MS);
      });
    });
    req.on('error', () => {
      inFlight = false;
    });
    req.end(body);
  };
  return new Promise((resolve, reject) => {
    // The live event may come in the answer's first read, before the stream is handed over.
    let wentLive = false;
    let live: () => void = () => {
      wentLive = true;
    };
    openFastSse(sseUrl(base, name, patterns, 'head'), (event, id, buf, start, end) => {
      if (event === SseEvent.msg) {
        view.buf = buf;
        view.start = start;
        view.end = end;
        onMessage(view);
        lastId = id;
        if (++unacked >= ACK_EVERY) ack();
        else ackTimer ??= setTimeout(ack, ACK_MS);
      } else if (event === SseEvent.live) live();
    }).then((stream) => {
      epoch = () => stream.epoch;
      live = () =>
        resolve({
          close: () => {
            closed = true;
            clearTimeout(ackTimer);
            stream.close();
          },
        });
      if (wentLive) live();
    }, reject);
  });
}

export interface Publisher {
  /** publishes every message; resolves when the system accepted them all */
  publish(batch: { ch: string; data: { t: number; pad: string } }[]): Promise<void>;
  close(): void;
}

/**
 * P: the server's own publish path (Store: the publishes of one turn as one publishmany script call)
 * straight on Redis, so the server's CPU is all delivery; B: pipelined PUBLISH; S: the server's "pub"
 * event (Socket.IO has no other way in).
 */
export async function publisher(system: System, base: string, redisUrl: string): Promise<Publisher> {
  if (system === 'P') {
    const redis = commandConnection(redisUrl);
    await connect(redis);
    const store = new Store(redis, { namespace: 'default', retentionMaxLen: 100_000, idempotencyWindowSec: 60 });
    await store.init();
    return {
      // Sent at once, as B's pipeline is: at the end of the turn would be after the load's reads of 1,000 sockets.
      publish: async (batch) => {
        const stored = batch.map((m) => store.publish(m.ch, m.data));
        store.flushPublishes();
        await Promise.all(stored);
      },
      close: () => redis.disconnect(),
    };
  }
  if (system === 'B') {
    const redis = new Redis(redisUrl, { protocol: 2 });
    return {
      publish: async (batch) => {
        const p = redis.pipeline();
        for (const m of batch) p.publish(m.ch, JSON.stringify(m.data));
        await p.exec();
      },
      close: () => redis.disconnect(),
    };
  }
  const s = io(base, { transports: ['websocket'], forceNew: true });
  await new Promise((resolve) => s.once('connect', () => resolve(undefined)));
  return {
    publish: async (batch) => {
      await s.emitWithAck(
        'pub',
        batch.map((m) => ({ room: m.ch, data: m.data })),
      );
    },
    close: () => s.disconnect(),
  };
}
