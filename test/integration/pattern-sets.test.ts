// Positions per (recipient, pattern set) in Redis against a model (property-based), the janitor's floors, and the migration of a layout-1 log.
import { patternSetKey } from '@durable-pubsub/client-sdk/protocol';
import { keysFor, loadConfig, Store, silentLogger } from '@durable-pubsub/server';
import { Janitor } from '@durable-pubsub/server/src/janitor';
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

const newStore = (ns: string) => new Store(redis.client, { namespace: ns, retentionMaxLen: 100, idempotencyWindowSec: 60 });

type Op =
  | { op: 'publish' }
  | { op: 'hello'; name: string; set: string; lastAckedId?: number; from: 'head' | 'earliest' }
  | { op: 'ack'; name: string; set: string; id: number }
  | { op: 'move'; name: string; set: string; position: number }
  | { op: 'import'; name: string; set: string; position: number }
  | { op: 'forget'; name: string; set?: string };

const name = fc.constantFrom('a', 'b');
const set = fc.constantFrom(patternSetKey(['x.*']), patternSetKey(['x.*', 'y']), patternSetKey(['y']), patternSetKey([]));
const id = fc.integer({ min: 0, max: 12 });
// Weighted towards hellos and acks, so that a recipient often has several sets when one of them is acked.
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ op: 'publish' as const }) },
  {
    weight: 3,
    arbitrary: fc.record(
      { op: fc.constant('hello' as const), name, set, lastAckedId: id, from: fc.constantFrom('head' as const, 'earliest' as const) },
      { requiredKeys: ['op', 'name', 'set', 'from'] },
    ),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('ack' as const), name, set, id }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('move' as const), name, set, position: id }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('import' as const), name, set, position: id }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('forget' as const), name, set }, { requiredKeys: ['op', 'name'] }) },
);

/** What PROTOCOL.md's subscriptions say the store holds: recipient -> set -> position, and each recipient's newest. */
class Model {
  head = 0;
  readonly sets = new Map<string, Map<string, number>>();
  readonly newest = new Map<string, number>();

  private put(name: string, set: string, pos: number): void {
    let m = this.sets.get(name);
    if (!m) this.sets.set(name, (m = new Map()));
    m.set(set, pos);
    this.newest.set(name, Math.max(this.newest.get(name) ?? 0, pos));
  }

  apply(o: Op): number | undefined {
    const stored = 'set' in o && o.set !== undefined ? this.sets.get(o.name)?.get(o.set) : undefined;
    switch (o.op) {
      case 'publish':
        this.head++;
        return;
      case 'hello': {
        const newest = this.newest.get(o.name);
        let resume: number;
        if (o.lastAckedId !== undefined) resume = Math.min(o.lastAckedId, this.head);
        else if (stored !== undefined) resume = Math.min(stored, this.head);
        else if (newest !== undefined) resume = Math.min(newest, this.head);
        else resume = o.from === 'earliest' ? 0 : this.head;
        this.put(o.name, o.set, Math.max(stored ?? resume, resume));
        return resume;
      }
      case 'ack':
        if (stored !== undefined) this.put(o.name, o.set, Math.max(stored, o.id));
        return;
      case 'move':
        // A connection's sub/unsub: a set the recipient has keeps its position; a forgotten recipient stays so.
        if (this.sets.has(o.name) && stored === undefined) this.put(o.name, o.set, o.position);
        return;
      case 'import':
        this.put(o.name, o.set, Math.max(stored ?? o.position, o.position));
        return;
      case 'forget': {
        const m = this.sets.get(o.name);
        if (o.set !== undefined) m?.delete(o.set);
        if (!m || o.set === undefined || m.size === 0) {
          this.sets.delete(o.name);
          this.newest.delete(o.name);
        }
        return;
      }
    }
  }
}

async function apply(store: Store, o: Op): Promise<number | undefined> {
  const subs = store.subscriptions;
  if (o.op === 'publish') await store.publish('x.1', 1);
  else if (o.op === 'hello') return (await store.hello(o.name, o.set, { lastAckedId: o.lastAckedId, from: o.from })).resumeFrom;
  else if (o.op === 'ack') await store.ack(o.name, o.set, o.id, store.epoch || 'none');
  else if (o.op === 'move') await subs.place(o.name, o.set, o.position);
  else if (o.op === 'import') await subs.place(o.name, o.set, o.position, true);
  else await subs.forget(o.name, o.set);
}

/** Everything the namespace holds about recipients, read back from Redis. */
async function readBack(ns: string) {
  const k = keysFor(ns);
  const c = redis.client;
  const sets: Record<string, Record<string, number>> = {};
  const newest: Record<string, number> = {};
  for (const name of await c.zrange(k.recipients, '0', '-1')) {
    const hash = await c.hgetall(k.recipient(name));
    newest[name] = Number(hash.acked);
    sets[name] = {};
    for (const f of Object.keys(hash).filter((f) => f.startsWith('s:')))
      (sets[name] as Record<string, number>)[f.slice(2)] = Number(await c.zscore(k.psetPrefix + f.slice(2), name));
  }
  const floors: Record<string, number> = {};
  const flat = await c.zrange(k.floors, '0', '-1', 'WITHSCORES');
  for (let i = 0; i < flat.length; i += 2) floors[flat[i] as string] = Number(flat[i + 1]);
  const psetKeys = (await c.keys(`${k.psetPrefix}*`)).map((key) => key.slice(k.psetPrefix.length)).sort();
  const subs = (await c.zrange(k.subs, '0', '-1')).sort();
  return { sets, newest, floors, psetKeys, subs };
}

function expected(model: Model) {
  const sets: Record<string, Record<string, number>> = {};
  const floors: Record<string, number> = {};
  const subs: string[] = [];
  for (const [name, m] of model.sets) {
    sets[name] = Object.fromEntries(m);
    for (const [set, pos] of m) {
      floors[set] = Math.min(floors[set] ?? Number.POSITIVE_INFINITY, pos);
      subs.push(`${set}\n${name}`);
    }
  }
  return { sets, newest: Object.fromEntries(model.newest), floors, psetKeys: Object.keys(floors).sort(), subs: subs.sort() };
}

describe('positions per pattern set', () => {
  it('follow the model after any hellos, acks, moves, imports and forgets, with each set floored at its lowest position', async () => {
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 30 }), async (ops) => {
        const ns = `ps${++round}`;
        const store = newStore(ns);
        await store.init();
        const model = new Model();
        for (const o of ops) {
          const resume = await apply(store, o);
          expect(resume).toBe(model.apply(o));
        }
        expect(await readBack(ns)).toEqual(expected(model));
      }),
      { numRuns: 150 },
    );
  });

  it('convert a layout-1 log: each recipient position becomes its stored set position, once', async () => {
    const ns = 'legacy';
    const k = keysFor(ns);
    await redis.client
      .multi()
      .hset(k.recipient('old1'), 'acked', '7', 'patterns', '["x.*"]')
      .hset(k.recipient('old2'), 'acked', '3', 'patterns', '["y","x.*","y"]')
      .hset(k.recipient('old3'), 'acked', '5', 'patterns', '["x.*","y"]')
      .zadd(k.recipients, 1, 'old1', 2, 'old2', 3, 'old3')
      .sadd(k.legacyPsets, '["x.*"]', '["y","x.*","y"]', '["x.*","y"]')
      .zadd(`${k.psetPrefix}["x.*"]`, 7, 'old1')
      .zadd(`${k.psetPrefix}["y","x.*","y"]`, 3, 'old2')
      .zadd(`${k.psetPrefix}["x.*","y"]`, 5, 'old3')
      .exec();
    const store = newStore(ns);
    await store.init();
    await store.init(); // a second node starting: nothing twice
    const xy = patternSetKey(['x.*', 'y']);
    expect(await readBack(ns)).toEqual({
      sets: { old1: { '["x.*"]': 7 }, old2: { [xy]: 3 }, old3: { [xy]: 5 } },
      newest: { old1: 7, old2: 3, old3: 5 },
      floors: { '["x.*"]': 7, [xy]: 3 },
      psetKeys: ['["x.*"]', xy].sort(),
      subs: [`["x.*"]\nold1`, `${xy}\nold2`, `${xy}\nold3`].sort(),
    });
    expect(await redis.client.exists(k.legacyPsets)).toBe(0);
    expect(await redis.client.zscore(k.subs, `${xy}\nold3`)).toBe('3'); // last seen carried over
    // Resuming without a position of its own uses the migrated one.
    expect((await store.hello('old2', patternSetKey(['x.*', 'y']), {})).resumeFrom).toBe(0); // head is 0: nothing published
  });

  it('hold back trimming when a set arrives after its channel was seen', async () => {
    const ns = 'late';
    const store = newStore(ns);
    await store.init();
    const janitor = new Janitor(store, loadConfig({}, { namespace: ns }), silentLogger, () => new Set());
    const stored = async () =>
      (await redis.client.zrangebyscore(keysFor(ns).channel('late.a'), '-inf', '+inf', 'WITHSCORES')).filter((_, i) => i % 2).map(Number);
    const wide = patternSetKey(['late.*']);
    const narrow = patternSetKey(['late.a']);
    await store.hello('first', wide, {});
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) ids.push((await store.publish('late.a', i)).id);
    await janitor.runOnce(true); // the janitor has matched late.a against the sets it knows
    expect(await stored()).toEqual(ids);
    await store.hello('second', narrow, { from: 'earliest' }); // a new set, at position 0
    await store.ack('first', wide, ids[2] as number, store.epoch);
    await janitor.runOnce(true);
    expect(await stored()).toEqual(ids);
    await store.ack('second', narrow, ids[1] as number, store.epoch);
    await janitor.runOnce(true);
    expect(await stored()).toEqual(ids.slice(2));
    await store.subscriptions.forget('second');
    await janitor.runOnce(true);
    expect(await stored()).toEqual([]);
  });

  it('a janitor reads every floor again when another reader took the record of changes (another node, the CLI)', async () => {
    const ns = 'two-janitors';
    const store = newStore(ns);
    await store.init();
    const config = loadConfig({}, { namespace: ns });
    const [a, b] = [0, 1].map(() => new Janitor(store, config, silentLogger, () => new Set()));
    const stored = async () =>
      (await redis.client.zrangebyscore(keysFor(ns).channel('two.a'), '-inf', '+inf', 'WITHSCORES')).filter((_, i) => i % 2).map(Number);
    const wide = patternSetKey(['two.*']);
    await store.hello('first', wide, {});
    const ids: number[] = [];
    for (let i = 0; i < 4; i++) ids.push((await store.publish('two.a', i)).id);
    await a?.runOnce(true);
    await store.hello('second', patternSetKey(['two.a']), { lastAckedId: ids[0] }); // a new set, floor ids[0]
    await b?.runOnce(true); // takes that change
    await store.ack('first', wide, ids[3] as number, store.epoch);
    await a?.runOnce(true); // must know of the second set although b took the change
    expect(await stored()).toEqual(ids.slice(1));
    const dry = await a?.plan();
    expect(dry).toEqual([{ channel: 'two.a', stored: 3, byAck: 0, byRetention: 0 }]);
  });
});
