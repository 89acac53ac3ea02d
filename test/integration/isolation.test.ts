// Isolation (property-based): no connection receives, replays or gets a gap for a channel outside its grant, and it gets everything inside it.
import { globMatch } from '@durable-pubsub/client-sdk/protocol';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { sleep, withServer } from '../support/env';
import { RawClient } from '../support/raw-client';

const SECRET = 'isolation-secret-isolation-secret-0123';
// A small cap, so that replays meet retention and report gaps.
const ctx = withServer({ DPS_JWT_SECRET: SECRET, DPS_RETENTION_MAX_LEN: '3' });

const CHANNELS = ['a.1', 'a.2', 'b.1', 'b.2', 'c.x'];
const GRANTS = ['a.*', 'b.1', 'c.?', '*', 'z.*'];
const SUBS = ['*', 'a.*', 'b.*', '?.1', 'c.x'];
let run = 0;

const token = (sub: string, read: string[], pub: string[] = []) =>
  new SignJWT({ dps: { sub: read, pub } })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(SECRET));

async function hello(recipient: string, grant: string[], subs: string[]) {
  const c = await RawClient.connect(ctx.server.wsUrl);
  c.send({ op: 'hello', v: 1, recipient, subs, token: await token(recipient, grant) });
  await c.next('live');
  return c;
}

const matches = (patterns: string[], ch: string) => patterns.some((p) => globMatch(p, ch));

describe('isolation', () => {
  it('holds for random grants, subscriptions and channels, live, replayed and in gap reports', async () => {
    const publisher = await token('publisher', [], ['*']);
    const publish = async (chs: string[]) => {
      const res = await fetch(`${ctx.server.url}/v1/publish`, {
        method: 'POST',
        headers: { authorization: `Bearer ${publisher}` },
        body: JSON.stringify({ messages: chs.map((ch) => ({ ch, data: ch })) }),
      });
      return ((await res.json()) as { ids: number[] }).ids;
    };
    const client = fc.record({ grant: fc.subarray(GRANTS, { minLength: 1 }), subs: fc.subarray(SUBS, { minLength: 1 }) });
    await fc.assert(
      fc.asyncProperty(
        fc.array(client, { minLength: 1, maxLength: 3 }),
        fc.array(fc.constantFrom(...CHANNELS), { minLength: 1, maxLength: 12 }),
        fc.array(fc.constantFrom(...CHANNELS), { minLength: 1, maxLength: 12 }),
        async (clients, offline, online) => {
          run++;
          const names = clients.map((_, i) => `iso-${run}-${i}`);
          // Each recipient starts at the head, goes away, misses `offline`, comes back and sees `online` live.
          for (const [i, c] of clients.entries()) (await hello(names[i] as string, c.grant, c.subs)).close();
          const missed = (await publish(offline)).map((id, i) => [id, offline[i] as string] as const);
          const retained = new Set<number>();
          for (const ch of CHANNELS)
            for (const f of await ctx.redis.client.zrangebyscore(`dps:{default}:ch:${ch}`, '-inf', '+inf')) retained.add(JSON.parse(f).id);
          const conns = await Promise.all(clients.map((c, i) => hello(names[i] as string, c.grant, c.subs)));
          const live = (await publish(online)).map((id, i) => [id, online[i] as string] as const);
          for (const [i, c] of clients.entries()) {
            const conn = conns[i] as RawClient;
            const wanted = (ch: string) => matches(c.grant, ch) && matches(c.subs, ch);
            const expected = [...missed.filter(([id, ch]) => wanted(ch) && retained.has(id)), ...live.filter(([, ch]) => wanted(ch))].map(
              ([id]) => id,
            );
            const last = expected[expected.length - 1];
            // Wait for the last expected id; a client that should get nothing gets time to show a leak.
            if (last !== undefined) await conn.waitFor((f) => f.id === last, 5000, `id ${last}`);
            else await sleep(150);
            expect(conn.msgIds()).toEqual(expected);
            const gapChannels = [...new Set(conn.frames.filter((f) => f.op === 'gap').map((f) => f.ch as string))].sort();
            const lost = [...new Set(missed.filter(([id, ch]) => wanted(ch) && !retained.has(id)).map(([, ch]) => ch))].sort();
            expect(gapChannels).toEqual(lost);
            conn.close();
          }
        },
      ),
      { numRuns: 25 },
    );
  });
});
