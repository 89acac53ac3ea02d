// Replay reads asked again within a moment (clients resuming from one point) go to Redis once; never across epochs or failures; the channel index once per tick and point.
import { keysFor, Store } from '@durable-pubsub/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, type TestRedis } from '../support/env';

let redis: TestRedis;

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.cleanup();
});

function store(ns: string): { store: Store; reads: () => number } {
  let reads = 0;
  const s = new Store(redis.client, {
    namespace: ns,
    retentionMaxLen: 1000,
    idempotencyWindowSec: 60,
    observe: (op) => {
      if (op === 'read') reads++;
    },
  });
  return { store: s, reads: () => reads };
}

describe('recent replay reads', () => {
  it('answers the same read once, whether asked together or a moment later, and a different one apart', async () => {
    const { store: s, reads } = store('rr1');
    const ids = (await Promise.all([1, 2, 3, 4, 5].map((n) => s.publish('a', n)))).map((r) => r.id);
    const head = ids[4] as number;
    const [x, y] = await Promise.all([s.readChunk('a', 0, head, 3), s.readChunk('a', 0, head, 3)]);
    const z = await s.readChunk('a', 0, head, 3);
    expect(reads()).toBe(1);
    expect(x.ids).toEqual(ids.slice(0, 3));
    expect(y).toBe(x);
    expect(z).toBe(x);
    expect((await s.readChunk('a', 0, head - 1, 3)).ids).toEqual(ids.slice(0, 3));
    expect((await s.readChunk('a', ids[2] as number, head, 3)).ids).toEqual(ids.slice(3));
    expect(reads()).toBe(3);
  });

  it('reads again after the log changed epoch', async () => {
    const { store: s, reads } = store('rr2');
    const { id } = await s.publish('a', 1);
    await s.readChunk('a', 0, id, 10);
    await redis.client.set(keysFor('rr2').epoch, 'another-log');
    expect(await s.checkEpoch()).toBe('another-log');
    await s.readChunk('a', 0, id, 10);
    expect(reads()).toBe(2);
  });

  it('does not hand a failed read to later ones', async () => {
    const { store: s } = store('rr3');
    await s.publish('a', 1); // the store knows its epoch from here on
    const key = keysFor('rr3').channel('b');
    await redis.client.set(key, 'not a sorted set');
    await expect(s.readChunk('b', 0, 5, 10)).rejects.toThrow();
    await redis.client.del(key);
    const { id } = await s.publish('b', 1);
    expect((await s.readChunk('b', 0, 5, 10)).ids).toEqual([id]);
  });
  it('reads the channel index once for what is asked from one point in one tick, and again after', async () => {
    const { store: s } = store('rr-changed');
    const a = (await s.publish('a', 1)).id;
    const b = (await s.publish('b', 2)).id;
    const indexReads = async () => {
      const line = /cmdstat_zrangebyscore:calls=(\d+)/.exec(await redis.client.info('commandstats'));
      return Number(line?.[1] ?? 0);
    };
    await redis.client.config('RESETSTAT');
    const [x, y, z] = await Promise.all([s.changedSince(0), s.changedSince(0), s.changedSince(a)]);
    expect(x).toEqual({ head: b, channels: ['a', 'b'] });
    expect(y).toBe(x);
    expect(z).toEqual({ head: b, channels: ['b'] });
    expect(await indexReads()).toBe(2);
    // Asked after those were read: a read of its own, which sees what was published since.
    const c = (await s.publish('c', 3)).id;
    expect(await s.changedSince(0)).toEqual({ head: c, channels: ['a', 'b', 'c'] });
    expect(await indexReads()).toBe(3);
  });
});
