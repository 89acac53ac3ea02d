// A reader that stops reading is not dropped and does not grow server memory: it is served from the store, paced by its socket.
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  httpPublish,
  sampleSendBuffers,
  sleep,
  startTestRedis,
  startTestServer,
  type TestRedis,
  type TestServer,
  until,
} from '../support/env';

import { RawClient } from '../support/raw-client';

let redis: TestRedis;
let server: TestServer;
const HIGH_WATER = 64 * 1024;
const PAGE = 100;

beforeAll(async () => {
  redis = await startTestRedis();
  server = await startTestServer(redis.url, { DPS_SEND_HIGH_WATER: String(HIGH_WATER), DPS_REPLAY_PAGE: String(PAGE) });
});
afterAll(async () => {
  await server?.stop();
  await redis?.cleanup();
});

describe('backpressure', () => {
  it('a live reader that stalls falls back to the store, keeps the send buffer bounded, and gets everything once it reads again', async () => {
    const c = await RawClient.connect(server.wsUrl);
    await c.hello({ recipient: 'stalls', subs: ['bp.*'] });
    await c.next('live');
    const socket = (c as unknown as { ws: { _socket: Socket } }).ws._socket;
    socket.pause();
    const sampler = sampleSendBuffers(server);
    const payload = 'x'.repeat(1000);
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await httpPublish(server, { messages: Array.from({ length: 250 }, (_, j) => ({ ch: `bp.${j % 3}`, data: payload })) });
      ids.push(...r.body.ids);
    }
    await sleep(300);
    socket.resume();
    await until(() => c.lastId() === ids[ids.length - 1], 20_000, 'the stalled reader to catch up');
    const maxBuffered = sampler.stop();
    expect(c.msgIds()).toEqual(ids);
    // Went back to the store once and came back live once.
    expect(c.frames.filter((f) => f.op === 'live').map((f) => f.id)).toEqual([0, ids[ids.length - 1]]);
    // Bounded by the high-water mark plus one replay page (about 1.1 kB a frame), not by the 5,000 messages (5.5 MB).
    process.stdout.write(`backpressure: largest server send buffer ${maxBuffered} bytes (bound ${HIGH_WATER + PAGE * 1100})\n`);
    expect(maxBuffered).toBeLessThanOrEqual(HIGH_WATER + PAGE * 1100);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^dps_slow_consumer_fallbacks_total 1$/m);
    c.close();
  });

  it('paces a large replay by the reader: the send buffer stays bounded while the reader is paused', async () => {
    const ids: number[] = [];
    const payload = 'y'.repeat(1000);
    for (let i = 0; i < 20; i++) {
      const r = await httpPublish(server, { messages: Array.from({ length: 250 }, () => ({ ch: 'slowreplay', data: payload })) });
      ids.push(...r.body.ids);
    }
    const c = await RawClient.connect(server.wsUrl);
    const socket = (c as unknown as { ws: { _socket: Socket } }).ws._socket;
    const sampler = sampleSendBuffers(server);
    c.send({ op: 'hello', v: 1, recipient: 'slow-replayer', subs: ['slowreplay'], from: 'earliest' });
    await c.next('welcome');
    socket.pause();
    await sleep(500);
    socket.resume();
    await c.next('live', 20_000);
    const maxBuffered = sampler.stop();
    expect(c.msgIds()).toEqual(ids);
    expect(maxBuffered).toBeLessThanOrEqual(HIGH_WATER + PAGE * 1100);
    c.close();
  });
});
