// What an operator reads: /metrics, /v1/channels, /v1/recipients, and one log line per connection open and close.
import type { Logger } from '@durable-pubsub/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpPublish, startTestRedis, startTestServer, type TestRedis, type TestServer, until } from '../support/env';
import { RawClient } from '../support/raw-client';

let redis: TestRedis;
let server: TestServer;
const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
const log: Logger = {
  debug: (msg, fields) => lines.push({ level: 'debug', msg, fields }),
  info: (msg, fields) => lines.push({ level: 'info', msg, fields }),
  warn: (msg, fields) => lines.push({ level: 'warn', msg, fields }),
  error: (msg, fields) => lines.push({ level: 'error', msg, fields }),
};

beforeAll(async () => {
  redis = await startTestRedis();
  server = await startTestServer(redis.url, {}, { log });
});
afterAll(async () => {
  await server?.stop();
  await redis?.cleanup();
});

async function metrics(): Promise<Map<string, number>> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(dps_[^\s]+|nodejs_eventloop_lag_seconds)\s+(\S+)$/.exec(line);
    if (m) out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

describe('operations', () => {
  it('counts publishes, deliveries, replays, acks and connections in /metrics, with lag and Redis latency', async () => {
    const live = await RawClient.connect(server.wsUrl);
    await live.hello({ recipient: 'ops-live', subs: ['ops.*'] });
    await live.next('live');
    const lagger = await RawClient.connect(server.wsUrl);
    await lagger.hello({ recipient: 'ops-lagger', subs: ['ops.a'] });
    await lagger.next('live');
    lagger.close();
    await lagger.closed();

    const { body } = await httpPublish(server, {
      messages: [
        { ch: 'ops.a', data: 1 },
        { ch: 'ops.b', data: 2 },
        { ch: 'ops.a', data: 3 },
      ],
    });
    live.send({ op: 'pub', ch: 'other', data: 4, ref: 'w' });
    await live.next('puback');
    await live.waitFor((f) => f.id === body.ids[2]);
    live.send({ op: 'ack', id: body.ids[2] });
    const replayer = await RawClient.connect(server.wsUrl);
    await replayer.hello({ recipient: 'ops-replayer', subs: ['ops.b'], from: 'earliest' });
    await replayer.next('live');

    await until(async () => (await metrics()).get('dps_acks_total') === 1, 5000, 'the ack to be counted');
    const m = await metrics();
    expect({
      published: m.get('dps_messages_published_total'),
      delivered: m.get('dps_messages_delivered_total'),
      replayed: m.get('dps_messages_replayed_total'),
      acks: m.get('dps_acks_total'),
      gaps: m.get('dps_gaps_total'),
      live: m.get('dps_connections{state="live"}'),
      lagger: m.get('dps_recipient_lag{recipient="ops-lagger"}'),
      publishTimings: m.get('dps_redis_command_duration_seconds_count{op="publish"}'),
    }).toEqual({ published: 4, delivered: 3, replayed: 1, acks: 1, gaps: 0, live: 2, lagger: 2, publishTimings: 2 });
    expect(m.has('nodejs_eventloop_lag_seconds')).toBe(true);
    live.close();
    replayer.close();
  });

  it('lists channels with their newest id and stored count', async () => {
    const res = await (await fetch(`${server.url}/v1/channels`)).json();
    expect(res).toEqual({
      channels: [
        { channel: 'ops.b', newestId: 2, stored: 1 },
        { channel: 'ops.a', newestId: 3, stored: 2 },
        { channel: 'other', newestId: 4, stored: 1 },
      ],
    });
  });

  it('lists recipients with position, lag, last seen and connections, and forgets one on DELETE', async () => {
    const { recipients } = (await (await fetch(`${server.url}/v1/recipients`)).json()) as { recipients: Record<string, unknown>[] };
    const lagger = recipients.find((r) => r.name === 'ops-lagger');
    expect(lagger).toEqual({
      name: 'ops-lagger',
      lastAckedId: 0,
      lag: 2,
      lastSeen: expect.any(Number),
      connections: 0,
      patterns: ['ops.a'],
      sets: [{ patterns: ['ops.a'], lastAckedId: 0, lag: 2, lastSeen: expect.any(Number), connections: 0 }],
    });
    expect(recipients.map((r) => r.name).sort()).toEqual(['ops-lagger', 'ops-live', 'ops-replayer']);
    const del = await fetch(`${server.url}/v1/recipients/ops-lagger`, { method: 'DELETE' });
    expect([del.status, await del.json()]).toEqual([200, { ok: true }]);
    const again = await fetch(`${server.url}/v1/recipients/ops-lagger`, { method: 'DELETE' });
    expect(again.status).toBe(404);
  });

  it('logs one line per connection open and close, with duration and counts, and no message contents', async () => {
    await until(() => lines.filter((l) => l.msg === 'connection closed').length === 3, 5000, 'three close lines');
    const opens = lines.filter((l) => l.msg === 'connection open').map((l) => l.fields?.recipient);
    expect(opens).toEqual(['ops-live', 'ops-lagger', 'ops-replayer']);
    const closes = Object.fromEntries(lines.filter((l) => l.msg === 'connection closed').map((l) => [l.fields?.recipient, l.fields]));
    expect(closes['ops-live']).toMatchObject({ sentLive: 3, sentReplayed: 0, acked: 3, durationMs: expect.any(Number) });
    expect(closes['ops-replayer']).toMatchObject({ sentLive: 0, sentReplayed: 1 });
    expect(JSON.stringify(lines)).not.toContain('"data"');
  });
});
