// The bridge hands Redis one pattern per distinct pattern while few, the whole stream past the threshold — never one per client.
import { describe, expect, it } from 'vitest';
import { httpPublish, until, withServer } from '../support/env';
import { RawClient } from '../support/raw-client';

// Classic pub/sub (PSUBSCRIBE), as on Redis < 7; sharded.test.ts covers SSUBSCRIBE.
const ctx = withServer({ DPS_BRIDGE_WIDE_THRESHOLD: '4', DPS_SHARDED_PUBSUB: 'off' });

const numpat = async () => Number(await ctx.redis.client.call('PUBSUB', 'NUMPAT'));
/** the bridge's subscriber connections (the Durable Streams wake subscriber, `dps-stream-wake`, is another) */
const pubsubConnections = async () => {
  const list = (await ctx.redis.client.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string;
  return list.split('\n').filter((line) => line.includes(' name=dps-live ')).length;
};

async function client(recipient: string, subs: string[]): Promise<RawClient> {
  const c = await RawClient.connect(ctx.server.wsUrl);
  await c.hello({ recipient, subs });
  await c.next('live');
  return c;
}

describe('bridge', () => {
  it('subscribes each distinct pattern once, however many clients share it', async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, (_, i) => client(`shared-${i}`, ['b.shared.*'])));
    expect(await numpat()).toBe(1);
    expect(await pubsubConnections()).toBe(1);
    const r = await httpPublish(ctx.server, { ch: 'b.shared.x', data: 1 });
    for (const c of clients) await c.waitFor((f) => f.id === r.body.id);
    for (const c of clients) expect(c.msgIds()).toEqual([r.body.id]);
    for (const c of clients) c.close();
    await until(async () => (await numpat()) === 0, 5000, 'the pattern to be dropped');
  });

  it('FCALL dps_publish publishes classic too, as the server wrote in the namespace config', async () => {
    const c = await client('classic-fcall', ['f.*']);
    expect(await ctx.redis.client.hget('dps:{default}:config', 'pubsub')).toBe('classic');
    const [id] = (await ctx.redis.client.call('FCALL', 'dps_publish', '1', 'dps:{default}', 'f.x', '1')) as [number];
    await c.waitFor((f) => f.id === id);
    expect(c.msgIds()).toEqual([id]);
    expect(await ctx.redis.client.call('PUBSUB', 'SHARDCHANNELS')).toEqual([]);
    c.close();
  });

  it('switches to the whole live stream above the threshold and back below half of it, delivering exactly throughout', async () => {
    const subs = ['w.a', 'w.b', 'w.c', 'w.d', 'w.e', 'w.[ab]'];
    const clients = await Promise.all(subs.map((p, i) => client(`wide-${i}`, [p])));
    await until(async () => (await numpat()) === 1, 5000, 'one wide pattern');

    const chs = ['w.a', 'w.b', 'w.c', 'w.d', 'w.e', 'w.f'];
    const { body } = await httpPublish(ctx.server, { messages: chs.map((ch) => ({ ch, data: ch })) });
    const want = (p: string) =>
      (body.ids as number[]).filter((_, i) => (p === 'w.[ab]' ? ['w.a', 'w.b'].includes(chs[i] as string) : chs[i] === p));
    for (const [i, c] of clients.entries()) {
      const expected = want(subs[i] as string);
      await c.waitFor((f) => f.id === expected[expected.length - 1]);
      expect(c.msgIds()).toEqual(expected);
    }

    for (const c of clients.slice(0, 4)) c.close(); // 2 distinct patterns left: narrow again
    await until(async () => (await numpat()) === 2, 5000, 'two narrow patterns');
    const again = await httpPublish(ctx.server, {
      messages: [
        { ch: 'w.e', data: 1 },
        { ch: 'w.a', data: 2 },
      ],
    });
    await clients[5]?.waitFor((f) => f.id === again.body.ids[1]);
    expect(clients[4]?.msgIds()).toEqual([...want('w.e'), again.body.ids[0]]);
    expect(clients[5]?.msgIds()).toEqual([...want('w.[ab]'), again.body.ids[1]]);
    clients[4]?.close();
    clients[5]?.close();
  });
});
