// How the load generator talks to each system of `pnpm bench`: subscribe sockets and publish.
// P speaks PROTOCOL.md (raw frames, cumulative acks every 100 messages like the SDK); B its one-line
// sub frame; S through socket.io-client. Every message carries `t`, its publish time on one clock.
import { Store } from '@durable-pubsub/server';
import { commandConnection, connect } from '@durable-pubsub/server/src/redis/connect';
import { Redis } from 'ioredis';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';

export type System = 'P' | 'B' | 'S';

/** Milliseconds on a clock shared by every process of the machine. */
export const now = () => performance.timeOrigin + performance.now();

/** The publish time in a delivered message (a frame's text, or S's decoded object). */
export function sentAt(m: string | { t: number }): number {
  if (typeof m !== 'string') return m.t;
  const i = m.indexOf('"t":');
  return i < 0 ? Number.NaN : Number.parseFloat(m.slice(i + 4, i + 24));
}

export interface Subscription {
  close(): void;
}

/** One subscribed socket; resolves once it is live. `onMessage` gets each delivered message. */
export function subscribe(
  system: System,
  base: string,
  patterns: string[],
  name: string,
  onMessage: (m: string | { t: number }) => void,
): Promise<Subscription> {
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
    const ws = new WebSocket(system === 'P' ? `${base.replace('http', 'ws')}/ws` : base.replace('http', 'ws'), {
      perMessageDeflate: false,
    });
    ws.once('error', reject);
    let pending = patterns.length;
    let unacked = 0;
    const done = () => resolve({ close: () => ws.terminate() });
    ws.on('open', () => {
      if (system === 'P') ws.send(JSON.stringify({ op: 'hello', v: 1, recipient: name, subs: patterns, from: 'head' }));
      else for (const p of patterns) ws.send(JSON.stringify({ sub: p }));
    });
    ws.on('message', (data) => {
      const text = String(data);
      if (system === 'B') {
        if (text.startsWith('{"subbed"')) {
          if (--pending === 0) done();
        } else onMessage(text);
        return;
      }
      if (text.startsWith('{"op":"msg"')) {
        onMessage(text);
        if (++unacked >= 100) {
          unacked = 0;
          const id = Number.parseInt(text.slice(17, 40), 10);
          ws.send(`{"op":"ack","id":${id}}`);
        }
      } else if (text.startsWith('{"op":"live"')) done();
    });
  });
}

export interface Publisher {
  /** publishes every message; resolves when the system accepted them all */
  publish(batch: { ch: string; data: { t: number; pad: string } }[]): Promise<void>;
  close(): void;
}

/**
 * P: the publish script straight on Redis (what a backend in any language runs; the server's CPU is
 * then all delivery); B: pipelined PUBLISH; S: the server's "pub" event (Socket.IO has no other way in).
 */
export async function publisher(system: System, base: string, redisUrl: string): Promise<Publisher> {
  if (system === 'P') {
    const redis = commandConnection(redisUrl);
    await connect(redis);
    const store = new Store(redis, { namespace: 'default', retentionMaxLen: 100_000, idempotencyWindowSec: 60 });
    await store.init();
    return {
      publish: async (batch) => void (await Promise.all(batch.map((m) => store.publish(m.ch, m.data)))),
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
