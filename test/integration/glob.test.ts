// The in-process glob matcher agrees with Redis's own PSUBSCRIBE, byte for byte (property-based).
import { compileGlob, globMatch } from '@durable-pubsub/client-sdk/protocol';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, type TestRedis, until } from '../support/env';

let redis: TestRedis;
let sub: Redis;

beforeAll(async () => {
  redis = await startTestRedis();
  sub = new Redis(redis.url, { protocol: 2 });
});
afterAll(async () => {
  sub?.disconnect();
  await redis?.cleanup();
});

const patternChar = fc.constantFrom('a', 'b', 'c', 'x', '*', '?', '[', ']', '^', '-', '\\', 'é', '.');
const channelChar = fc.constantFrom('a', 'b', 'c', 'x', '*', '?', '[', ']', '^', '-', '\\', 'é', '.');
const pattern = fc.array(patternChar, { minLength: 1, maxLength: 8 }).map((cs) => cs.join(''));
const channel = fc.array(channelChar, { minLength: 1, maxLength: 6 }).map((cs) => cs.join(''));

let round = 0;

/** Which (pattern, channel) pairs Redis itself delivers. */
async function redisMatches(patterns: string[], channels: string[]): Promise<Set<string>> {
  const seen = new Set<string>();
  const end = `zz-end-${++round}`;
  let done = false;
  const onMsg = (p: string, ch: string) => {
    if (ch === end) done = true;
    else seen.add(JSON.stringify([p, ch]));
  };
  sub.on('pmessage', onMsg);
  await sub.psubscribe(...patterns, end);
  for (const ch of channels) await redis.client.publish(ch, '1');
  await redis.client.publish(end, '1');
  await until(() => done, 5000, 'the end marker');
  await sub.punsubscribe();
  sub.off('pmessage', onMsg);
  return seen;
}

describe('glob semantics', () => {
  it('matches exactly what Redis PSUBSCRIBE matches', async () => {
    const examples: [string[], string[]][] = [
      [
        ['a*', '*', '?', '[a-c]', '[^x]', '\\*', '[abc', '[a-]', '[z-a]', '[^', '[\\]]', 'a\\', '**a', '*?*', 'é', '?', '??'],
        ['a', 'abc', '*', 'x', ']', 'é', 'b-', '\\', 'aa'],
      ],
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(pattern, { minLength: 1, maxLength: 25 }),
        fc.uniqueArray(channel, { minLength: 1, maxLength: 25 }),
        async (patterns, channels) => {
          const actual = await redisMatches(patterns, channels);
          for (const p of patterns) {
            const compiled = compileGlob(p);
            for (const ch of channels) {
              const redisSays = actual.has(JSON.stringify([p, ch]));
              expect([p, ch, globMatch(p, ch)]).toEqual([p, ch, redisSays]);
              expect([p, ch, compiled(ch)]).toEqual([p, ch, redisSays]);
            }
          }
        },
      ),
      { numRuns: 150, examples },
    );
  });
});
