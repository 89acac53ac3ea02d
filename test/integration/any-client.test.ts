// Publishing without the server: the publish script called from plain redis-cli reaches an SDK client live and is replayable.
import { execFileSync } from 'node:child_process';
import { createClient, memoryStorage } from '@durable-pubsub/client-sdk';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { until, withServer } from '../support/env';
import { RawClient } from '../support/raw-client';

const SCRIPT = new URL('../../server/src/redis/lua/publish-6.lua', import.meta.url).pathname;
const ctx = withServer();

/** Exactly the command the README documents. */
function cliPublish(ch: string, dataJson: string, key = ''): string {
  const t = 'dps:{default}';
  return execFileSync(
    'redis-cli',
    [
      '-p',
      String(ctx.redis.port),
      '--eval',
      SCRIPT,
      `${t}:seq`,
      `${t}:epoch`,
      `${t}:index`,
      `${t}:ch:${ch}`,
      `${t}:idem:${key}`,
      `${t}:trimmed`,
      ',',
      ch,
      JSON.stringify(ch),
      dataJson,
      '100000',
      '86400',
      `cli-${Date.now()}`,
      `${t}:live:${ch}`,
      key ? '1' : '0',
    ],
    { encoding: 'utf8' },
  );
}

describe('publishing from any Redis client', () => {
  it('a message published with redis-cli --eval reaches a live client and is replayed to a later one', async () => {
    // The receiving end is the SDK, as an application would use it.
    const got: [number, string, unknown][] = [];
    const live = createClient({ url: ctx.server.wsUrl, recipient: 'cli-live', storage: memoryStorage(), WebSocket: WebSocket as never });
    live.subscribe('cli.*', (m) => void got.push([m.id, m.ch, m.data]));
    await until(() => live.state === 'live', 10_000, 'live');
    const out = cliPublish('cli.news', '{"from":"redis-cli"}');
    const [id, dup] = out.trim().split('\n');
    expect([Number(id), dup]).toEqual([1, '0']);
    await until(() => got.length === 1, 5000, 'the SDK client to get it');
    expect(got).toEqual([[1, 'cli.news', { from: 'redis-cli' }]]);

    const dupOut = cliPublish('cli.news', '{"again":true}', 'k1');
    const dupAgain = cliPublish('cli.news', '{"again":true}', 'k1');
    expect(dupOut.trim().split('\n').slice(0, 2)).toEqual(['2', '0']);
    expect(dupAgain.trim().split('\n').slice(0, 2)).toEqual(['2', '1']);

    const later = await RawClient.connect(ctx.server.wsUrl);
    await later.hello({ recipient: 'cli-later', subs: ['cli.*'], from: 'earliest' });
    await later.next('live');
    expect(later.frames.filter((f) => f.op === 'msg').map((f) => [f.id, f.data])).toEqual([
      [1, { from: 'redis-cli' }],
      [2, { again: true }],
    ]);
    await until(() => got.length === 2, 5000, 'the second message');
    expect(got.map(([i]) => i)).toEqual([1, 2]);
    live.close();
    later.close();
  });
});
