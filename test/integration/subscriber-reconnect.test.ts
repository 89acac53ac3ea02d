// When the server's Redis subscriber connection is killed, every live socket catches up from the store: nothing is lost.
import { globMatch } from '@durable-pubsub/client-sdk/protocol';
import { describe, expect, it } from 'vitest';
import { runPublisher, sleep, until, withServer } from '../support/env';
import { RawClient } from '../support/raw-client';

const ctx = withServer();

describe('subscriber reconnect', () => {
  it('delivers every message to every client across three CLIENT KILL TYPE pubsub', async () => {
    const subs = [['rk.*'], ['rk.a'], ['rk.?', 'rk.b'], ['*']];
    const clients = await Promise.all(
      subs.map(async (patterns, i) => {
        const c = await RawClient.connect(ctx.server.wsUrl);
        await c.hello({ recipient: `rk-${i}`, subs: patterns });
        await c.next('live');
        return { c, patterns };
      }),
    );
    const pub = runPublisher(ctx.server.url, 6000, ['rk.a', 'rk.b', 'rk.c', 'other'], { batch: 10, concurrency: 2 });
    const kills = 3;
    for (let k = 0; k < kills; k++) {
      await sleep(400);
      const killed = await ctx.redis.client.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      // The bridge's subscriber and the Durable Streams wake subscriber (dps-stream-wake), which comes back on its own.
      expect(killed).toBe(2);
      // Wait for the recovery to finish before the next kill, so each kill is one recovery.
      await until(
        () => clients.every(({ c }) => c.frames.filter((f) => f.op === 'live').length === k + 2),
        10_000,
        'all clients live again',
      );
    }
    const { published } = await pub.done;
    expect(published).toHaveLength(6000);
    const head = published[published.length - 1]?.[0] as number;
    for (const { c, patterns } of clients) {
      const expected = published.filter(([, ch]) => patterns.some((p) => globMatch(p, ch))).map(([id]) => id);
      await until(() => c.lastId() >= (expected[expected.length - 1] ?? 0), 10_000, `client ${patterns} to catch up`);
      expect(c.msgIds()).toEqual(expected);
      expect(c.frames.filter((f) => f.op === 'live')).toHaveLength(kills + 1);
      expect(c.lastId()).toBeLessThanOrEqual(head);
      c.close();
    }
  });
});
