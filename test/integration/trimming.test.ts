// Trimming: acked-by-all removal (the blog's seed scenario), idle recipients, retention with gap reports.
import { describe, expect, it } from 'vitest';
import { httpPublish, sleep, until, withServer } from '../support/env';
import { RawClient } from '../support/raw-client';

// The janitor is run by hand here (runOnce), so each step is deterministic.
const ctx = withServer({ DPS_RECIPIENT_TTL: '2', DPS_RETENTION_MAX_LEN: '5', DPS_RETENTION_MAX_AGE: '1' });

const stored = async (ch: string) =>
  (await ctx.redis.client.zrangebyscore(`dps:{default}:ch:${ch}`, '-inf', '+inf')).map((f) => JSON.parse(f).id);

async function publish(ch: string, n: number): Promise<number[]> {
  const r = await httpPublish(ctx.server, { messages: Array.from({ length: n }, (_, i) => ({ ch, data: i })) });
  return r.body.ids;
}

async function ackAndWait(c: RawClient, recipient: string, id: number): Promise<void> {
  c.send({ op: 'ack', id });
  await until(
    async () => Number(await ctx.redis.client.hget(`dps:{default}:r:${recipient}`, 'acked')) === id,
    5000,
    'the ack to be stored',
  );
}

describe('trimming', () => {
  it('removes a message only after every matching recipient acked it (sentiment_analysis and news_importance)', async () => {
    const sentiment = await RawClient.connect(ctx.server.wsUrl);
    await sentiment.hello({ recipient: 'sentiment_analysis', subs: ['news'] });
    const importance = await RawClient.connect(ctx.server.wsUrl);
    await importance.hello({ recipient: 'news_importance', subs: ['new?'] });
    await Promise.all([sentiment.next('live'), importance.next('live')]);
    const ids = await publish('news', 4); // at the cap of 5, retention does not interfere
    await Promise.all([sentiment.waitFor((f) => f.id === ids[3]), importance.waitFor((f) => f.id === ids[3])]);

    await ackAndWait(sentiment, 'sentiment_analysis', ids[1] as number);
    await ctx.server.janitor.runOnce(true);
    expect(await stored('news')).toEqual(ids);

    await ackAndWait(importance, 'news_importance', ids[3] as number);
    await ctx.server.janitor.runOnce(true);
    expect(await stored('news')).toEqual(ids.slice(2));

    await ackAndWait(sentiment, 'sentiment_analysis', ids[3] as number);
    await ctx.server.janitor.runOnce(true);
    expect(await stored('news')).toEqual([]);
    sentiment.close();
    importance.close();
  });

  it('keeps messages no recipient matches (until retention), so from: "earliest" can read them', async () => {
    const ids = await publish('nobody.listens', 3);
    await ctx.server.janitor.runOnce(true);
    expect(await stored('nobody.listens')).toEqual(ids);
  });

  it('stops a recipient that never returns from blocking trimming after DPS_RECIPIENT_TTL', async () => {
    const ghost = await RawClient.connect(ctx.server.wsUrl);
    await ghost.hello({ recipient: 'ghost', subs: ['ttl.*'] });
    ghost.close();
    await ghost.closed();
    const reader = await RawClient.connect(ctx.server.wsUrl);
    await reader.hello({ recipient: 'ttl-reader', subs: ['ttl.*'] });
    await reader.next('live');
    const ids = await publish('ttl.x', 3);
    await reader.waitFor((f) => f.id === ids[2]);
    await ackAndWait(reader, 'ttl-reader', ids[2] as number);

    await ctx.server.janitor.runOnce(true);
    expect(await stored('ttl.x')).toEqual(ids); // the ghost holds them back

    await sleep(2200);
    const report = await ctx.server.janitor.runOnce(true);
    // The connected reader is touched, so it stays; the seed scenario's recipients left earlier.
    expect(report?.forgotten.sort()).toEqual(['ghost', 'news_importance', 'sentiment_analysis']);
    expect(await stored('ttl.x')).toEqual([]);
    expect(await ctx.redis.client.zscore('dps:{default}:recipients', 'ttl-reader')).not.toBe(null);
    reader.close();
  });

  it('reports messages removed by the length cap as a gap to a recipient behind it, never to one that acked them', async () => {
    const behind = await RawClient.connect(ctx.server.wsUrl);
    const w = await behind.hello({ recipient: 'laggard', subs: ['ret.*'] });
    await behind.next('live');
    behind.close();
    await behind.closed();
    const upToDate = await RawClient.connect(ctx.server.wsUrl);
    await upToDate.hello({ recipient: 'up-to-date', subs: ['ret.*'] });
    await upToDate.next('live');

    const a = await publish('ret.a', 12); // cap 5: the first 7 go
    const b = await publish('ret.b', 2);
    expect(await stored('ret.a')).toEqual(a.slice(7));
    await upToDate.waitFor((f) => f.id === b[1]);
    await ackAndWait(upToDate, 'up-to-date', b[1] as number);
    upToDate.close();
    await upToDate.closed();

    const back = await RawClient.connect(ctx.server.wsUrl);
    await back.hello({ recipient: 'laggard', subs: ['ret.*'], epoch: w.epoch, lastAckedId: w.resumeFrom });
    await back.next('live');
    expect(back.frames.slice(1).map((f) => (f.op === 'msg' ? f.id : f))).toEqual([
      { op: 'gap', ch: 'ret.a', after: w.resumeFrom, upTo: a[6], reason: 'retention' },
      ...a.slice(7),
      ...b,
      { op: 'live', id: b[1] },
    ]);

    const again = await RawClient.connect(ctx.server.wsUrl);
    await again.hello({ recipient: 'up-to-date', subs: ['ret.*'] });
    await again.next('live');
    expect(again.frames.slice(1)).toEqual([{ op: 'live', id: b[1] }]);
    back.close();
    again.close();
  });

  it('removes messages older than DPS_RETENTION_MAX_AGE and reports them as a gap', async () => {
    const c = await RawClient.connect(ctx.server.wsUrl);
    const w = await c.hello({ recipient: 'age-reader', subs: ['age.*'] });
    c.close();
    await c.closed();
    const old = await publish('age.x', 3);
    await ctx.server.janitor.runOnce(true); // notes that ids <= old[2] exist now
    await sleep(1200);
    const fresh = await publish('age.x', 1);
    await ctx.server.janitor.runOnce(true);
    expect(await stored('age.x')).toEqual(fresh);

    const back = await RawClient.connect(ctx.server.wsUrl);
    await back.hello({ recipient: 'age-reader', subs: ['age.*'], epoch: w.epoch, lastAckedId: w.resumeFrom });
    await back.next('live');
    expect(back.frames.slice(1).map((f) => (f.op === 'msg' ? f.id : f))).toEqual([
      { op: 'gap', ch: 'age.x', after: w.resumeFrom, upTo: old[2], reason: 'retention' },
      fresh[0],
      { op: 'live', id: fresh[0] },
    ]);
    back.close();
  });
});
