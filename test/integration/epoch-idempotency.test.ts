// Epochs (a lost log is never silently skipped) and idempotent publishing.
import { describe, expect, it } from 'vitest';
import { httpPublish, withServer } from '../support/env';
import { RawClient } from '../support/raw-client';

const ctx = withServer();

describe('idempotency', () => {
  it('stores a repeated key once: same id, dup: true, one delivery', async () => {
    const c = await RawClient.connect(ctx.server.wsUrl);
    await c.hello({ recipient: 'idem', subs: ['idem.*'] });
    await c.next('live');
    const first = await httpPublish(ctx.server, { ch: 'idem.a', data: 1, key: 'order-42' });
    const again = await httpPublish(ctx.server, { ch: 'idem.a', data: 1, key: 'order-42' });
    c.send({ op: 'pub', ch: 'idem.a', data: 1, key: 'order-42', ref: 'w' });
    const overWs = await c.next('puback');
    const other = await httpPublish(ctx.server, { ch: 'idem.a', data: 2, key: 'order-43' });
    expect(first).toEqual({ status: 200, body: { id: first.body.id } });
    expect(again).toEqual({ status: 200, body: { id: first.body.id, dup: true } });
    expect(overWs).toEqual({ op: 'puback', ref: 'w', id: first.body.id, dup: true });
    await c.waitFor((f) => f.id === other.body.id);
    expect(c.msgIds()).toEqual([first.body.id, other.body.id]);
    const batch = await httpPublish(ctx.server, {
      messages: [
        { ch: 'idem.a', data: 1, key: 'order-42' },
        { ch: 'idem.b', data: 3 },
      ],
    });
    expect(batch.body.ids[0]).toBe(first.body.id);
    expect(batch.body.dups).toEqual([true, false]);
    // One key twice in one batch (one script call): stored once, the second answered as a duplicate.
    const twice = await httpPublish(ctx.server, {
      messages: [
        { ch: 'idem.c', data: 1, key: 'order-44' },
        { ch: 'idem.c', data: 2, key: 'order-44' },
        { ch: 'idem.c', data: 3 },
      ],
    });
    const [id44] = twice.body.ids;
    expect(twice.body).toEqual({ ids: [id44, id44, id44 + 1], dups: [false, true, false] });
    c.close();
  });

  it('keeps the key for its window (24 h by default)', async () => {
    await httpPublish(ctx.server, { ch: 'idem.ttl', data: 1, key: 'ttl-key' });
    const ttl = await ctx.redis.client.ttl('dps:{default}:idem:ttl-key');
    expect(ttl).toBeGreaterThan(86400 - 10);
    expect(ttl).toBeLessThanOrEqual(86400);
  });
});

describe('epoch', () => {
  it('after FLUSHALL a client with the old epoch gets epochChanged and the new epoch from the start', async () => {
    const c = await RawClient.connect(ctx.server.wsUrl);
    const w1 = await c.hello({ recipient: 'epoch-watcher', subs: ['ep.*'] });
    await c.next('live');
    const before = await httpPublish(ctx.server, {
      messages: [
        { ch: 'ep.a', data: 1 },
        { ch: 'ep.a', data: 2 },
      ],
    });
    await c.waitFor((f) => f.id === before.body.ids[1]);
    const acked = c.lastId();

    await ctx.redis.client.flushall();
    // The ctx.server notices the new epoch on its next look at the log (here: a publish) and closes old connections.
    const after = await httpPublish(ctx.server, {
      messages: [
        { ch: 'ep.a', data: 'new-1' },
        { ch: 'ep.b', data: 'new-2' },
        { ch: 'zz', data: 3 },
      ],
    });
    expect(after.body.ids).toEqual([1, 2, 3]);
    expect(await c.closed()).toBe(1001);

    const back = await RawClient.connect(ctx.server.wsUrl);
    const w2 = await back.hello({ recipient: 'epoch-watcher', subs: ['ep.*'], epoch: w1.epoch, lastAckedId: acked });
    expect(w2.epochChanged).toBe(true);
    expect(w2.epoch).not.toBe(w1.epoch);
    expect(w2.resumeFrom).toBe(0);
    await back.next('live');
    expect(back.frames.filter((f) => f.op === 'msg').map((f) => [f.id, f.data])).toEqual([
      [1, 'new-1'],
      [2, 'new-2'],
    ]);
    back.close();
  });

  it('an ack from the old epoch cannot move a position in the new log', async () => {
    const c = await RawClient.connect(ctx.server.wsUrl);
    await c.hello({ recipient: 'old-acker', subs: ['oa'] });
    await c.next('live');
    const r = await httpPublish(ctx.server, { ch: 'oa', data: 1 });
    await c.waitFor((f) => f.id === r.body.id);
    await ctx.redis.client.flushall();
    // Nothing told the ctx.server about the flush yet: the ack script's own epoch check refuses it.
    c.send({ op: 'ack', id: r.body.id });
    expect(await c.closed()).toBe(1001);
    expect(await ctx.redis.client.hget('dps:{default}:r:old-acker', 'acked')).toBe(null);
  });
});
