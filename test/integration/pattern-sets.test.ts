// The janitor's pattern sets (one sorted set per distinct pattern set: recipient -> acked) mirror the recipient hashes after any operations (property-based).
import { keysFor, loadConfig, Store, silentLogger } from '@durable-pubsub/server';
import { Janitor } from '@durable-pubsub/server/src/janitor';
import { defineScripts } from '@durable-pubsub/server/src/redis/scripts';
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

type Op =
  | { op: 'publish' }
  | { op: 'hello'; name: string; patterns: string[]; lastAckedId?: number; from: 'head' | 'earliest' }
  | { op: 'ack'; name: string; id: number }
  | { op: 'setPatterns'; name: string; patterns: string[] }
  | { op: 'position'; name: string; acked: number; patterns: string[] }
  | { op: 'forget'; name: string };

const name = fc.constantFrom('a', 'b', 'c', 'd');
const patterns = fc.constantFrom<string[]>(['x.*'], ['x.*', 'y'], ['y'], ['y', 'x.*'], []);
const id = fc.integer({ min: 0, max: 12 });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.constant({ op: 'publish' as const }),
  fc.record(
    { op: fc.constant('hello' as const), name, patterns, lastAckedId: id, from: fc.constantFrom('head' as const, 'earliest' as const) },
    { requiredKeys: ['op', 'name', 'patterns', 'from'] },
  ),
  fc.record({ op: fc.constant('ack' as const), name, id }),
  fc.record({ op: fc.constant('setPatterns' as const), name, patterns }),
  fc.record({ op: fc.constant('position' as const), name, acked: id, patterns }),
  fc.record({ op: fc.constant('forget' as const), name }),
);

/** What the pattern sets must hold, derived from the recipient hashes: patterns JSON -> recipient -> acked. */
async function fromHashes(store: Store): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (const r of await store.recipients()) {
    const key = JSON.stringify(r.patterns);
    out[key] = { ...out[key], [r.name]: r.acked };
  }
  return out;
}

/** What the pattern sets hold, including any stray pattern-set key the index does not list. */
async function psets(ns: string): Promise<{ listed: Record<string, Record<string, number>>; keys: string[] }> {
  const k = keysFor(ns);
  const listed: Record<string, Record<string, number>> = {};
  for (const p of await redis.client.smembers(k.psets)) {
    const flat = await redis.client.zrangebyscore(k.psetPrefix + p, '-inf', '+inf', 'WITHSCORES');
    listed[p] = {};
    for (let i = 0; i < flat.length; i += 2) (listed[p] as Record<string, number>)[flat[i] as string] = Number(flat[i + 1]);
  }
  const keys = (await redis.client.keys(`${k.psetPrefix}*`)).map((key) => key.slice(k.psetPrefix.length));
  return { listed, keys: keys.sort() };
}

describe('pattern sets', () => {
  it('mirror every recipient position and pattern change, and give each set its lowest position', async () => {
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
        const ns = `ps${++round}`;
        const store = new Store(defineScripts(redis.client), { namespace: ns, retentionMaxLen: 100, idempotencyWindowSec: 60 });
        for (const o of ops) {
          if (o.op === 'publish') await store.publish('x.1', 1);
          else if (o.op === 'hello') await store.hello(o.name, o.patterns, { lastAckedId: o.lastAckedId, from: o.from });
          else if (o.op === 'ack') await store.ack(o.name, o.id, store.epoch || 'none');
          else if (o.op === 'setPatterns') await store.setPatterns(o.name, o.patterns);
          else if (o.op === 'position') await store.positionRecipient(o.name, o.acked, o.patterns);
          else await store.forgetRecipient(o.name);
        }
        const expected = await fromHashes(store);
        const actual = await psets(ns);
        expect(actual.listed).toEqual(expected);
        expect(actual.keys).toEqual(Object.keys(expected).sort());
        const floors = (await store.patternSetFloors()).map(({ patterns, floor }) => ({ patterns, floor }));
        const expectedFloors = Object.entries(expected).map(([p, byName]) => ({
          patterns: JSON.parse(p),
          floor: Math.min(...Object.values(byName)),
        }));
        const order = (a: { patterns: string[] }, b: { patterns: string[] }) =>
          JSON.stringify(a.patterns).localeCompare(JSON.stringify(b.patterns));
        expect(floors.sort(order)).toEqual(expectedFloors.sort(order));
      }),
      { numRuns: 80 },
    );
  });

  it('are built from the recipient hashes of a log written before they existed', async () => {
    const ns = 'legacy';
    const k = keysFor(ns);
    await redis.client
      .multi()
      .hset(k.recipient('old1'), 'acked', '7', 'patterns', '["x.*"]')
      .hset(k.recipient('old2'), 'acked', '3', 'patterns', '["x.*"]')
      .hset(k.recipient('old3'), 'acked', '5', 'patterns', '["y"]')
      .zadd(k.recipients, 1, 'old1', 2, 'old2', 3, 'old3')
      .exec();
    const store = new Store(defineScripts(redis.client), { namespace: ns, retentionMaxLen: 100, idempotencyWindowSec: 60 });
    const floors = (await store.patternSetFloors()).map(({ patterns, floor }) => ({ patterns, floor }));
    expect(floors.sort((a, b) => a.floor - b.floor)).toEqual([
      { patterns: ['x.*'], floor: 3 },
      { patterns: ['y'], floor: 5 },
    ]);
    expect((await psets(ns)).listed).toEqual({ '["x.*"]': { old1: 7, old2: 3 }, '["y"]': { old3: 5 } });
  });

  it('hold back trimming when a recipient with a new pattern set arrives after its channel was seen', async () => {
    const ns = 'late';
    const store = new Store(defineScripts(redis.client), { namespace: ns, retentionMaxLen: 100, idempotencyWindowSec: 60 });
    const janitor = new Janitor(store, loadConfig({}, { namespace: ns }), silentLogger, () => new Set());
    const stored = async () =>
      (await redis.client.zrangebyscore(keysFor(ns).channel('late.a'), '-inf', '+inf', 'WITHSCORES')).filter((_, i) => i % 2).map(Number);
    await store.hello('first', ['late.*'], {});
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) ids.push((await store.publish('late.a', i)).id);
    await janitor.runOnce(true); // the janitor has matched late.a against the sets it knows
    expect(await stored()).toEqual(ids);
    await store.hello('second', ['late.a'], { from: 'earliest' }); // a new set, at position 0
    await store.ack('first', ids[2] as number, store.epoch);
    await janitor.runOnce(true);
    expect(await stored()).toEqual(ids);
    await store.ack('second', ids[1] as number, store.epoch);
    await janitor.runOnce(true);
    expect(await stored()).toEqual(ids.slice(2));
    await store.forgetRecipient('second');
    await janitor.runOnce(true);
    expect(await stored()).toEqual([]);
  });
});
