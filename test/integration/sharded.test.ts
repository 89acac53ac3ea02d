// On Redis >= 7 live delivery is sharded pub/sub: one SSUBSCRIBE of the namespace's shard channel, no pattern in Redis, matching in process.
import { describe, expect, it } from 'vitest';
import { httpPublish, until, withServer } from '../support/env';
import { RawClient } from '../support/raw-client';

// A threshold far below the patterns used: in classic mode this would be one wide PSUBSCRIBE.
const ctx = withServer({ DPS_BRIDGE_WIDE_THRESHOLD: '4' });

const pubsub = async (...args: string[]) => ctx.redis.client.call('PUBSUB', ...args);

async function client(recipient: string, subs: string[]): Promise<RawClient> {
  const c = await RawClient.connect(ctx.server.wsUrl);
  await c.hello({ recipient, subs });
  await c.next('live');
  return c;
}

describe('sharded pub/sub', () => {
  it('SSUBSCRIBEs the namespace shard channel once and PSUBSCRIBEs nothing, however many patterns clients hold', async () => {
    const subs = Array.from({ length: 40 }, (_, i) => [`s.${i}`, `s.${i}.*`, `t.[${i % 10}]x`]);
    const clients = await Promise.all(subs.map((p, i) => client(`sharded-${i}`, p)));
    expect(await pubsub('NUMPAT')).toBe(0);
    expect(await ctx.redis.client.hget('dps:{default}:config', 'pubsub')).toBe('sharded');
    // The one classic channel is the Durable Streams wake channel (it carries stream paths, not messages).
    expect(await pubsub('CHANNELS')).toEqual(['dps:{default}:ds:wake']);
    expect(await pubsub('SHARDCHANNELS')).toEqual(['dps:{default}:live']);
    expect(await pubsub('SHARDNUMSUB', 'dps:{default}:live')).toEqual(['dps:{default}:live', 1]);

    const chs = ['s.3', 's.3.eu', 's.17.x', 't.5x', 't.55x', 'u.none'];
    const { body } = await httpPublish(ctx.server, { messages: chs.map((ch) => ({ ch, data: ch })) });
    const ids = body.ids as number[];
    const want = (i: number) =>
      ids.filter((_, k) => {
        const ch = chs[k] as string;
        return ch === `s.${i}` || ch.startsWith(`s.${i}.`) || ch === `t.${i % 10}x`;
      });
    // The last message anyone wants, then exact sequences: nothing else arrived, nothing twice.
    await until(() => clients.every((c, i) => want(i).every((id) => c.msgIds().includes(id))), 5000, 'live delivery');
    const tail = await httpPublish(ctx.server, { ch: 's.0', data: 'end' });
    await clients[0]?.waitFor((f) => f.id === tail.body.id);
    for (const [i, c] of clients.entries()) expect(c.msgIds()).toEqual(i === 0 ? [...want(0), tail.body.id] : want(i));
    for (const c of clients) c.close();
  });

  it('delivers FCALL dps_publish frames (cjson escapes) and channel names with escapes, by the channel in the frame', async () => {
    const names = ['e/slash', 'e"quote', 'e\\back', 'e.é日本', 'e\u2028ls'];
    const c = await client('sharded-escapes', ['e*']);
    const ids: number[] = [];
    for (const ch of names) {
      ids.push((await httpPublish(ctx.server, { ch, data: 1 })).body.id);
      const [id] = (await ctx.redis.client.call('FCALL', 'dps_publish', '1', 'dps:{default}', ch, '2')) as [number];
      ids.push(id);
    }
    await c.waitFor((f) => f.id === ids[ids.length - 1]);
    expect(c.msgIds()).toEqual(ids);
    expect(c.frames.filter((f) => f.op === 'msg').map((f) => f.ch)).toEqual(names.flatMap((ch) => [ch, ch]));
    c.close();
  });
});
