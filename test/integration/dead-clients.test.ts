// Clients that vanish without a close (a laptop that slept, a phone that changed networks) are reaped by the server's
// heartbeat within two intervals, and stop counting against the per-recipient connection limit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpPublish, startTestRedis, startTestServer, type TestRedis, type TestServer, until } from '../support/env';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';
import { RawClient } from '../support/raw-client';

const INTERVAL = 1500;
let redis: TestRedis;
let server: TestServer;
let proxy: FaultProxy;

beforeAll(async () => {
  redis = await startTestRedis();
  server = await startTestServer(redis.url, { DPS_HEARTBEAT_INTERVAL: String(INTERVAL), DPS_MAX_CONNECTIONS_PER_RECIPIENT: '20' });
  proxy = await startFaultProxy({ port: server.port });
});
afterAll(async () => {
  await proxy?.close();
  await server?.stop();
  await redis?.cleanup();
});

const open = () => [...server.sessions].filter((s) => s.recipient === 'sleeper' && !s.closed).length;

describe('dead clients', () => {
  it('20 connections whose network went silent are terminated within two heartbeats; the recipient connects again and loses nothing', async () => {
    const viaProxy = `ws://127.0.0.1:${proxy.port}/ws`;
    const sleepers = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const c = await RawClient.connect(viaProxy);
        await c.hello({ recipient: 'sleeper', subs: ['nap.*'] });
        await c.next('live');
        return c;
      }),
    );
    expect(open()).toBe(20);
    const refused = await RawClient.connect(server.wsUrl);
    refused.send({ op: 'hello', v: 1, recipient: 'sleeper', subs: ['nap.*'] });
    expect(await refused.closed()).toBe(4429);

    const first = (await httpPublish(server, { ch: 'nap.a', data: 0 })).body.id;
    await Promise.all(sleepers.map((c) => c.waitFor((f) => f.id === first)));
    for (const c of sleepers) c.send({ op: 'ack', id: first });
    await until(async () => Number(await redis.client.hget('dps:{default}:r:sleeper', 'acked')) === first, 5000, 'the ack');

    // The laptop sleeps: its TCP connections stay open, and nothing passes either way (not even a FIN).
    proxy.silent({ discard: true });
    const silentAt = performance.now();
    const missed: number[] = [];
    for (let i = 0; i < 5; i++) missed.push((await httpPublish(server, { ch: 'nap.a', data: i })).body.id);
    await until(() => open() === 0, INTERVAL * 2 + 1000, 'the dead connections to be terminated');
    const reapedMs = Math.round(performance.now() - silentAt);
    console.log(`dead clients: 20 silent connections terminated ${reapedMs} ms after the network went silent (heartbeat ${INTERVAL} ms)`);

    const back = await RawClient.connect(server.wsUrl);
    const w = await back.hello({ recipient: 'sleeper', subs: ['nap.*'] });
    await back.next('live');
    expect(w.resumeFrom).toBe(first);
    expect(back.msgIds()).toEqual(missed);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(/^dps_connections_dead_total (\d+)/m.exec(metrics)?.[1]).toBe('20');
    back.close();
    proxy.pass();
    for (const c of sleepers) c.terminate();
  });

  it('keeps a connection that is quiet but answers pings', async () => {
    const c = await RawClient.connect(server.wsUrl);
    await c.hello({ recipient: 'quiet', subs: ['quiet.*'] });
    await c.next('live');
    await new Promise((r) => setTimeout(r, INTERVAL * 3));
    expect(c.closeCode).toBe(null);
    const id = (await httpPublish(server, { ch: 'quiet.x', data: 1 })).body.id;
    expect((await c.waitFor((f) => f.op === 'msg')).id).toBe(id);
    c.close();
  });
});
