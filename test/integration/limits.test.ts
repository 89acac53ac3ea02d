// Abuse limits: frame rate, patterns per connection and their '*' count, connections per recipient, slow consumers (4508).
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { httpPublish, sampleSendBuffers, until, withServer } from '../support/env';
import { RawClient } from '../support/raw-client';

const ctx = withServer({
  DPS_MAX_FRAMES_PER_SEC: '20',
  DPS_MAX_PATTERNS: '3',
  DPS_MAX_PATTERN_STARS: '2',
  DPS_MAX_CONNECTIONS_PER_RECIPIENT: '2',
  DPS_SLOW_CONSUMER_TIMEOUT: '400',
  DPS_SEND_HIGH_WATER: '65536',
});

async function hello(recipient: string, subs: string[]): Promise<RawClient> {
  const c = await RawClient.connect(ctx.server.wsUrl);
  c.send({ op: 'hello', v: 1, recipient, subs });
  await c.waitFor((f) => f.op === 'welcome' || f.op === 'error');
  return c;
}

describe('limits', () => {
  it('closes a connection that sends more frames per second than allowed (4429), and only that one', async () => {
    const calm = await hello('calm', ['lim.*']);
    const noisy = await hello('noisy', []);
    for (let i = 0; i < 60; i++) noisy.send({ op: 'ping' });
    expect(await noisy.closed()).toBe(4429);
    expect(noisy.frames.find((f) => f.op === 'error')?.code).toBe('rate_limited');
    const r = await httpPublish(ctx.server, { ch: 'lim.a', data: 1 });
    await calm.waitFor((f) => f.id === r.body.id);
    expect(calm.closeCode).toBe(null);
    calm.close();
  });

  it('refuses too many patterns, and patterns with too many *', async () => {
    const many = await hello('many', ['a', 'b', 'c', 'd']);
    expect(await many.closed()).toBe(4400);
    const starry = await hello('starry', ['*.*.*']);
    expect(await starry.closed()).toBe(4400);
    const c = await hello('subber', ['a', 'b', 'c']);
    c.send({ op: 'sub', pattern: 'd', ref: 's' });
    expect(await c.next('error')).toMatchObject({ code: 'bad_request', ref: 's' });
    expect(c.closeCode).toBe(null);
    c.close();
  });

  it('allows a recipient only so many connections on a node (4429 past it)', async () => {
    const a = await hello('tabs', ['x']);
    const b = await hello('tabs', ['x']);
    const third = await hello('tabs', ['x']);
    expect([a.frames[0]?.op, b.frames[0]?.op, await third.closed()]).toEqual(['welcome', 'welcome', 4429]);
    a.close();
    await a.closed();
    const again = await hello('tabs', ['x']);
    expect(again.frames[0]?.op).toBe('welcome');
    b.close();
    again.close();
  });

  it('100,000 messages to a reader that never reads: bounded server buffer, closed with 4508, nothing lost after reconnect', async () => {
    const c = await hello('stalled', ['slow.*']);
    await c.next('live');
    (c as unknown as { ws: { _socket: Socket } }).ws._socket.pause();
    const sampler = sampleSendBuffers(ctx.server);
    const rss0 = process.memoryUsage().rss;
    const ids: number[] = [];
    const payload = 'z'.repeat(200);
    for (let i = 0; i < 100; i++)
      ids.push(
        ...(await httpPublish(ctx.server, { messages: Array.from({ length: 1000 }, () => ({ ch: 'slow.x', data: payload })) })).body.ids,
      );
    await until(() => ![...ctx.server.sessions].some((s) => s.recipient === 'stalled'), 10_000, 'the server to drop the stalled reader');
    const maxBuffered = sampler.stop();
    const rssGrowth = process.memoryUsage().rss - rss0;
    c.terminate();
    const metrics = await (await fetch(`${ctx.server.url}/metrics`)).text();
    expect(metrics).toMatch(/^dps_slow_consumer_closed_total 1$/m);
    // Bound: the 64 kB high-water mark plus one replay page (1,000 frames of ~260 bytes), not the 26 MB that flowed.
    process.stdout.write(
      `stalled reader: largest server send buffer ${maxBuffered} bytes; test process RSS growth ${(rssGrowth / 1e6).toFixed(1)} MB\n`,
    );
    expect(maxBuffered).toBeLessThanOrEqual(65_536 + 1000 * 300);

    const back = await hello('stalled', ['slow.*']);
    await back.next('live', 30_000);
    // It never acked: everything comes again, in order, and nothing is missing.
    expect(back.msgIds()).toEqual(ids);
    back.close();
  });
});
