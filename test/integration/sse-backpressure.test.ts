// An SSE reader that stops reading is paced from the store as a WebSocket is: the server's buffer for it stays bounded, and it gets everything once it reads again.
import { request } from 'node:http';
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

interface Event {
  event: string;
  id?: string;
  data: string;
}

/** A raw SSE reader: the events as they arrive, and its socket (to stop reading). */
function openSse(path: string): Promise<{ events: Event[]; socket: Socket; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
      const events: Event[] = [];
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        for (let end = text.indexOf('\n\n'); end >= 0; end = text.indexOf('\n\n')) {
          const block = text.slice(0, end);
          text = text.slice(end + 2);
          const e: Event = { event: 'message', data: '' };
          for (const line of block.split('\n')) {
            const [field, ...rest] = line.split(': ');
            if (field === 'event') e.event = rest.join(': ');
            else if (field === 'id') e.id = rest.join(': ');
            else if (field === 'data') e.data = rest.join(': ');
          }
          if (e.data) events.push(e);
        }
      });
      resolve({ events, socket: res.socket, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

const ids = (events: Event[], kind = 'msg') => events.filter((e) => e.event === kind).map((e) => JSON.parse(e.data).id as number);

describe('SSE backpressure', () => {
  it('a live reader that stalls is served from the store, keeps the buffer bounded, and gets everything once it reads again', async () => {
    const c = await openSse('/v1/sse?recipient=sse-stalls&subs=bp.*');
    await until(() => c.events.some((e) => e.event === 'live'), 5000, 'live');
    c.socket.pause();
    const sampler = sampleSendBuffers(server);
    const payload = 'x'.repeat(1000);
    const published: number[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await httpPublish(server, { messages: Array.from({ length: 250 }, (_, j) => ({ ch: `bp.${j % 3}`, data: payload })) });
      published.push(...r.body.ids);
    }
    await sleep(300);
    c.socket.resume();
    const last = published[published.length - 1] as number;
    await until(() => ids(c.events).at(-1) === last, 20_000, 'the stalled reader to catch up');
    const maxBuffered = sampler.stop();
    expect(ids(c.events)).toEqual(published);
    // Went back to the store once and came back live once; each msg event's id is <epoch>:<id>.
    await until(() => ids(c.events, 'live').length === 2, 5000, 'live again');
    expect(ids(c.events, 'live')).toEqual([0, last]);
    expect(c.events.filter((e) => e.event === 'msg').every((e) => e.id?.endsWith(`:${JSON.parse(e.data).id}`))).toBe(true);
    process.stdout.write(`sse backpressure: largest server buffer ${maxBuffered} bytes (bound ${HIGH_WATER + PAGE * 1200})\n`);
    expect(maxBuffered).toBeLessThanOrEqual(HIGH_WATER + PAGE * 1200);
    c.close();
  });
});
