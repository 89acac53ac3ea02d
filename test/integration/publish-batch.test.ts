// A batch of publishes (one publishmany script call) ends in the same state as one FCALL dps_publish per message (property-based).
import { keysFor, Store } from '@durable-pubsub/server';
import { functionLibrary } from '@durable-pubsub/server/src/redis/scripts';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, type TestRedis, until } from '../support/env';

const MAX_LEN = 3;

let redis: TestRedis;
let sub: Redis;
const heard = new Map<string, string[]>();

beforeAll(async () => {
  redis = await startTestRedis();
  await redis.client.call('FUNCTION', 'LOAD', 'REPLACE', functionLibrary());
  sub = new Redis(redis.url, { protocol: 2 });
  await sub.psubscribe('dps:{*}:live:*');
  sub.on('pmessage', (_p, ch: string, frame: string) => {
    const ns = /^dps:\{([^}]+)\}/.exec(ch)?.[1] as string;
    heard.set(ns, [...(heard.get(ns) ?? []), `${ch.slice(ch.indexOf(':live:') + 6)} ${frame}`]);
  });
});
afterAll(async () => {
  sub?.disconnect();
  await redis?.cleanup();
});

interface Item {
  ch: string;
  data: unknown;
  key?: string;
}

/** One FCALL dps_publish per message (the any-client path, functions/dps.lua): the reference. */
async function publishOneByOne(ns: string, items: Item[]): Promise<{ id: number; dup: boolean }[]> {
  const k = keysFor(ns);
  // The namespace's pub/sub mode, which both paths read from the config: classic (PUBLISH per channel).
  await redis.client.hset(k.config, 'maxLen', MAX_LEN, 'idemWindow', 86400, 'pubsub', 'classic');
  const out: { id: number; dup: boolean }[] = [];
  for (const m of items) {
    const args = [m.ch, JSON.stringify(m.data), ...(m.key === undefined ? [] : [m.key])];
    const [id, dup] = (await redis.client.call('FCALL', 'dps_publish', '1', `dps:{${ns}}`, ...args)) as [number, number];
    out.push({ id, dup: dup === 1 });
  }
  return out;
}

/** Everything a namespace holds, with publish times blanked (the two runs differ only there). */
async function dump(ns: string): Promise<Record<string, unknown>> {
  const k = keysFor(ns);
  const noTs = (s: string) => s.replace(/"ts":\d+/, '"ts":0');
  const channels = await redis.client.zrangebyscore(k.index, '-inf', '+inf', 'WITHSCORES');
  const sets: Record<string, string[]> = {};
  for (let i = 0; i < channels.length; i += 2) {
    const ch = channels[i] as string;
    sets[ch] = (await redis.client.zrangebyscore(k.channel(ch), '-inf', '+inf', 'WITHSCORES')).map((s) => noTs(s));
  }
  const idem: Record<string, string | null> = {};
  for (const key of ['a', 'b']) idem[key] = await redis.client.get(k.idem(key));
  return {
    seq: await redis.client.get(k.seq),
    index: channels,
    sets,
    trimmed: await redis.client.hgetall(k.trimmed),
    idem,
    live: (heard.get(ns) ?? []).map(noTs),
  };
}

const item: fc.Arbitrary<Item> = fc.record(
  {
    ch: fc.constantFrom('x', 'y', 'z.é'),
    // Any Unicode text, as a client may publish.
    data: fc.oneof(fc.integer(), fc.string(), fc.string({ unit: 'grapheme' }), fc.constant({ n: [1, null], s: 'é😀' })),
    key: fc.constantFrom('a', 'b'),
  },
  { requiredKeys: ['ch', 'data'] },
);

describe('batched publishing', () => {
  it('stores, caps, deduplicates and publishes a batch exactly as one call per message would', async () => {
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(item, { minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 3 }), async (batches) => {
        round++;
        const [one, many] = [`one${round}`, `many${round}`];
        const store = new Store(redis.client, { namespace: many, retentionMaxLen: MAX_LEN, idempotencyWindowSec: 86400 });
        const expected: { id: number; dup: boolean }[] = [];
        const got: { id: number; dup: boolean }[] = [];
        for (const batch of batches) {
          expected.push(...(await publishOneByOne(one, batch)));
          // Publishes of one event-loop turn: one script call.
          got.push(...(await Promise.all(batch.map((m) => store.publish(m.ch, m.data as never, m.key)))));
        }
        // The subscriber hears in publish order: once this marker is in, every frame before it is.
        await redis.client.publish(`dps:{end}:live:${round}`, '');
        await until(() => heard.get('end')?.length === round, 5000, 'the live frames');
        expect(got).toEqual(expected);
        expect(await dump(many)).toEqual(await dump(one));
      }),
      { numRuns: 60 },
    );
  });
});
