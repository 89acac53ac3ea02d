// Offline replay: a recipient that was away receives exactly what it missed, in order, then live messages.
import { describe, expect, it } from 'vitest';
import { httpPublish, withServer } from '../support/env';
import { RawClient } from '../support/raw-client';

const ctx = withServer();

async function publishBatch(chs: string[]): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < chs.length; i += 500) {
    const r = await httpPublish(ctx.server, { messages: chs.slice(i, i + 500).map((ch, j) => ({ ch, data: { n: i + j } })) });
    expect(r.status).toBe(200);
    ids.push(...r.body.ids);
  }
  return ids;
}

describe('offline replay', () => {
  it('replays exactly the 1,000 missed matching messages in order, then live, then new live messages', async () => {
    const first = await RawClient.connect(ctx.server.wsUrl);
    const welcome1 = await first.hello({ recipient: 'orders-dashboard', subs: ['orders.*'] });
    await first.next('live');
    first.close();
    await first.closed();

    const chs: string[] = [];
    for (let i = 0; i < 1000; i++) chs.push(i % 2 ? 'orders.eu' : 'orders.us');
    for (let i = 0; i < 500; i++) chs.splice(i * 3, 0, 'other');
    const ids = await publishBatch(chs);
    const expected = ids.filter((_, i) => chs[i] !== 'other');
    expect(expected).toHaveLength(1000);

    const back = await RawClient.connect(ctx.server.wsUrl);
    const welcome = await back.hello({
      recipient: 'orders-dashboard',
      subs: ['orders.*'],
      epoch: welcome1.epoch,
      lastAckedId: welcome1.resumeFrom,
    });
    expect(welcome.resumeFrom).toBe(welcome1.resumeFrom);
    const live = await back.next('live');
    expect(back.msgIds()).toEqual(expected);
    expect(live.id).toBe(ids[ids.length - 1]);
    const liveIndex = back.frames.findIndex((f) => f.op === 'live');
    expect(back.frames.slice(1, liveIndex).every((f) => f.op === 'msg')).toBe(true);

    const after = await publishBatch(['orders.eu', 'other', 'orders.us']);
    await back.waitFor((f) => f.op === 'msg' && f.id === after[2]);
    expect(back.msgIds()).toEqual([...expected, after[0], after[2]]);
    expect(
      back.frames
        .filter((f) => f.op === 'msg')
        .slice(-2)
        .map((f) => [f.ch, f.data]),
    ).toEqual([
      ['orders.eu', { n: 0 }],
      ['orders.us', { n: 2 }],
    ]);
    back.close();
  });

  it('sends the catch-up in msgs frames to a client whose hello says batch, then live messages one by one', async () => {
    const first = await RawClient.connect(ctx.server.wsUrl);
    const welcome1 = await first.hello({ recipient: 'batch-reader', subs: ['bt.*'], batch: true });
    await first.next('live');
    first.close();
    await first.closed();
    // ~300 KB of catch-up (two channels interleaved, 1 KB each): several msgs frames of at most 64 KiB
    const chs = Array.from({ length: 300 }, (_, i) => (i % 2 ? 'bt.a' : 'bt.b'));
    const ids: number[] = [];
    for (let i = 0; i < chs.length; i += 100) {
      const r = await httpPublish(ctx.server, {
        messages: chs.slice(i, i + 100).map((ch, j) => ({ ch, data: 'x'.repeat(1000 + ((i + j) % 7)) })),
      });
      ids.push(...r.body.ids);
    }
    const back = await RawClient.connect(ctx.server.wsUrl);
    await back.hello({ recipient: 'batch-reader', subs: ['bt.*'], epoch: welcome1.epoch, lastAckedId: welcome1.resumeFrom, batch: true });
    const live = await back.next('live');
    expect(live.id).toBe(ids.at(-1));
    const catchUp = back.frames.slice(1, back.frames.indexOf(live));
    expect(catchUp.map((f) => f.op)).toEqual(catchUp.map(() => 'msgs'));
    expect(catchUp.length).toBe(5); // 300 × ~1,050 bytes in frames of at most 64 KiB
    const msgs = catchUp.flatMap((f) => f.msgs);
    expect(msgs.map((m: { id: number }) => m.id)).toEqual(ids);
    expect(msgs.map((m: { op: string; ch: string; data: string }) => [m.op, m.ch, m.data.length])).toEqual(
      ids.map((_, i) => ['msg', chs[i], 1000 + (i % 7)]),
    );
    const after = await publishBatch(['bt.a']);
    const next = await back.waitFor((f) => f.op === 'msg', 10_000, 'a live msg');
    expect([next.id, back.frames.at(-1)]).toEqual([after[0], next]);
    back.close();
  });

  it('resumes from the stored position when the client sends none', async () => {
    const a = await RawClient.connect(ctx.server.wsUrl);
    await a.hello({ recipient: 'stored-pos', subs: ['s.*'] });
    await a.next('live');
    const ids = await publishBatch(['s.1', 's.2', 's.3', 's.4']);
    await a.waitFor((f) => f.id === ids[3]);
    a.send({ op: 'ack', id: ids[1] });
    await new Promise((r) => setTimeout(r, 100));
    a.close();
    await a.closed();

    const b = await RawClient.connect(ctx.server.wsUrl);
    const welcome = await b.hello({ recipient: 'stored-pos', subs: ['s.*'] });
    expect(welcome.resumeFrom).toBe(ids[1]);
    await b.next('live');
    expect(b.msgIds()).toEqual([ids[2], ids[3]]);
    b.close();
  });

  it('starts a new recipient at the head by default and at the earliest message with from: "earliest"', async () => {
    const ids = await publishBatch(['fresh.a', 'fresh.b']);
    const head = await RawClient.connect(ctx.server.wsUrl);
    const w1 = await head.hello({ recipient: 'fresh-head', subs: ['fresh.*'] });
    expect(w1.resumeFrom).toBe(ids[1]);
    await head.next('live');
    expect(head.msgIds()).toEqual([]);

    const earliest = await RawClient.connect(ctx.server.wsUrl);
    const w2 = await earliest.hello({ recipient: 'fresh-earliest', subs: ['fresh.*'], from: 'earliest' });
    expect(w2.resumeFrom).toBe(0);
    await earliest.next('live');
    expect(earliest.msgIds()).toEqual(ids);
    head.close();
    earliest.close();
  });

  it('delivers each id once to a connection whose patterns overlap', async () => {
    const c = await RawClient.connect(ctx.server.wsUrl);
    await c.hello({ recipient: 'overlap', subs: ['ov.*', 'ov.a', 'ov.?', '*'] });
    await c.next('live');
    const ids = await publishBatch(['ov.a', 'ov.b', 'zz', 'ov.a']);
    await c.waitFor((f) => f.id === ids[3]);
    expect(c.msgIds()).toEqual(ids);
    c.close();
  });

  it('sub adds a pattern live from now on (no backlog) and unsub removes it', async () => {
    const [old] = await publishBatch(['later.x']);
    const c = await RawClient.connect(ctx.server.wsUrl);
    await c.hello({ recipient: 'subber', subs: ['base'] });
    await c.next('live');
    c.send({ op: 'sub', pattern: 'later.*', ref: 'r1' });
    const subbed = await c.next('subbed');
    expect(subbed).toEqual({ op: 'subbed', pattern: 'later.*', ref: 'r1' });
    const [a, b] = await publishBatch(['later.x', 'base']);
    await c.waitFor((f) => f.id === b);
    expect(c.msgIds()).toEqual([a, b]);
    expect(old).toBeLessThan(a as number);
    c.send({ op: 'unsub', pattern: 'later.*', ref: 'r2' });
    expect(await c.next('unsubbed')).toEqual({ op: 'unsubbed', pattern: 'later.*', ref: 'r2' });
    const [, d] = await publishBatch(['later.x', 'base']);
    await c.waitFor((f) => f.id === d);
    expect(c.msgIds()).toEqual([a, b, d]);
    c.close();
  });

  it('applies and answers a sub and an unsub sent back to back in order: the pattern ends unsubscribed', async () => {
    const c = await RawClient.connect(ctx.server.wsUrl);
    await c.hello({ recipient: 'subflip', subs: ['base'] });
    await c.next('live');
    c.send({ op: 'sub', pattern: 'flip.*', ref: 1 });
    c.send({ op: 'unsub', pattern: 'flip.*', ref: 2 });
    await c.next('unsubbed');
    const [, b] = await publishBatch(['flip.x', 'base']);
    await c.waitFor((f) => f.id === b);
    expect(c.frames.filter((f) => f.op !== 'welcome').map((f) => `${f.op} ${f.ref ?? f.id}`)).toEqual([
      `live ${c.frames.find((f) => f.op === 'live')?.id}`,
      'subbed 1',
      'unsubbed 2',
      `msg ${b}`,
    ]);
    c.close();
  });

  it('publishes over the socket with pub/puback, and answers ping with pong', async () => {
    const c = await RawClient.connect(ctx.server.wsUrl);
    await c.hello({ recipient: 'ws-publisher', subs: ['wsp'] });
    await c.next('live');
    c.send({ op: 'pub', ch: 'wsp', data: { hello: 'world' }, ref: 'p1' });
    const ack = await c.next('puback');
    expect(ack).toEqual({ op: 'puback', ref: 'p1', id: expect.any(Number) });
    const msg = await c.waitFor((f) => f.op === 'msg');
    expect([msg.id, msg.ch, msg.data]).toEqual([ack.id, 'wsp', { hello: 'world' }]);
    c.send({ op: 'ping' });
    expect(await c.next('pong')).toEqual({ op: 'pong' });
    c.close();
  });
});
