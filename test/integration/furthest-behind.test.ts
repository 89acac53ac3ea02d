// /metrics' recipients furthest behind, found from the pattern sets' lowest positions, against every recipient's lag.
import { patternSetKey } from '@durable-pubsub/client-sdk/protocol';
import { Store } from '@durable-pubsub/server';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, type TestRedis } from '../support/env';

let redis: TestRedis;

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.cleanup();
});

let namespaces = 0;
const newStore = () => new Store(redis.client, { namespace: `behind-${++namespaces}`, retentionMaxLen: 100, idempotencyWindowSec: 60 });
const SETS = [patternSetKey(['x.*']), patternSetKey(['x.a', 'y']), patternSetKey(['y']), patternSetKey(['z'])];
const CHANNELS = ['x.a', 'x.b', 'y'];

/** The top `n` lags of every recipient (GET /v1/recipients' figures), largest first. */
async function allLags(store: Store, n: number): Promise<number[]> {
  const stats = await store.subscriptions.stats(await store.channels(), new Map());
  return stats
    .map((r) => r.lag)
    .sort((a, b) => b - a)
    .slice(0, n);
}

describe('furthestBehind', () => {
  it('finds the same lags as reading every recipient, when each recipient has one set', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(...CHANNELS), { minLength: 1, maxLength: 12 }),
        fc.array(fc.record({ set: fc.constantFrom(...SETS), position: fc.integer({ min: 0, max: 12 }) }), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 1, max: 6 }),
        async (published, recipients, n) => {
          const store = newStore();
          for (const ch of published) await store.publish(ch, 1);
          for (const [i, r] of recipients.entries()) await store.subscriptions.place(`r${i}`, r.set, r.position, true);
          const found = await store.subscriptions.furthestBehind(n, await store.channels());
          expect(found.map((f) => f.lag)).toEqual(await allLags(store, n));
          // Each one named has the lag it is reported with.
          const byName = new Map((await store.subscriptions.stats(await store.channels(), new Map())).map((r) => [r.name, r.lag]));
          for (const f of found) expect(f.lag).toBe(byName.get(f.name));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('sums the lags of a recipient with several sets, and reads only the lowest positions of each set', async () => {
    const store = newStore();
    for (const ch of ['x.a', 'x.b', 'y', 'x.a', 'y']) await store.publish(ch, 1);
    // ids 1 x.a, 2 x.b, 3 y, 4 x.a, 5 y. "both" is behind in two sets: x.* after 3 (4) and y after 3 (5).
    await store.subscriptions.place('both', SETS[0] as string, 3, true);
    await store.subscriptions.place('both', SETS[2] as string, 3, true);
    await store.subscriptions.place('far', SETS[0] as string, 0, true);
    await store.subscriptions.place('near', SETS[0] as string, 4, true);
    for (let i = 0; i < 50; i++) await store.subscriptions.place(`idle${i}`, SETS[2] as string, 5, true);
    const channels = await store.channels();
    await redis.client.config('RESETSTAT');
    expect(await store.subscriptions.furthestBehind(2, channels)).toEqual([
      { name: 'far', lag: 3 },
      { name: 'both', lag: 2 },
    ]);
    // x.* first (at most 3 behind at its floor): far and both; then y can have at most 1: not read. Two recipients read.
    const calls = (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    const stats = (await redis.client.info('commandstats')) as string;
    expect({ hgetall: calls('hgetall'), zrange: calls('zrange') }).toEqual({ hgetall: 2, zrange: 2 });
    expect(await store.subscriptions.furthestBehind(0, await store.channels())).toEqual([]);
  });
});
