// Publishing without the server: FCALL dps_publish from plain redis-cli and from redis-py reaches an SDK client live and is
// replayable; data that is not one JSON value, or a bad channel, is refused on that path and nothing is stored.
import { execFileSync, spawnSync } from 'node:child_process';
import { createClient, memoryStorage } from '@durable-pubsub/client-sdk';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { until, withServer } from '../support/env';
import { RawClient } from '../support/raw-client';

const ctx = withServer({ DPS_RETENTION_MAX_LEN: '3' });

/** Exactly the command the README documents; returns stdout, or the error line redis-cli prints. */
function fcall(...args: string[]): string {
  const r = spawnSync('redis-cli', ['-p', String(ctx.redis.port), 'FCALL', 'dps_publish', '1', 'dps:{default}', ...args], {
    encoding: 'utf8',
  });
  return r.stdout.trim();
}

const stored = async () => (await ctx.redis.client.keys('dps:{default}:ch:*')).sort();

describe('publishing from any Redis client', () => {
  it('FCALL dps_publish with redis-cli reaches a live client and is replayed to a later one', async () => {
    const got: [number, string, unknown][] = [];
    const live = createClient({ url: ctx.server.wsUrl, recipient: 'cli-live', storage: memoryStorage(), WebSocket });
    live.subscribe('cli.*', (m) => void got.push([m.id, m.ch, m.data]));
    await until(() => live.state === 'live', 10_000, 'live');
    const epoch = await ctx.redis.client.get('dps:{default}:epoch');
    expect(fcall('cli.news', '{"from":"redis-cli"}').split('\n')).toEqual(['1', '0', epoch]);
    await until(() => got.length === 1, 5000, 'the SDK client to get it');
    expect(got).toEqual([[1, 'cli.news', { from: 'redis-cli' }]]);

    expect(fcall('cli.news', ' [1, "two", {"3": null}] ', 'k1').split('\n').slice(0, 2)).toEqual(['2', '0']);
    expect(fcall('cli.news', '{"again":true}', 'k1').split('\n').slice(0, 2)).toEqual(['2', '1']);

    const later = await RawClient.connect(ctx.server.wsUrl);
    await later.hello({ recipient: 'cli-later', subs: ['cli.*'], from: 'earliest' });
    await later.next('live');
    expect(later.frames.filter((f) => f.op === 'msg').map((f) => [f.id, f.data])).toEqual([
      [1, { from: 'redis-cli' }],
      [2, [1, 'two', { 3: null }]],
    ]);
    await until(() => got.length === 2, 5000, 'the second message');
    live.close();
    later.close();
  });

  it('refuses data that is not exactly one JSON value, and bad channels, with bad_request: nothing stored, nobody handed it', async () => {
    const watcher = await RawClient.connect(ctx.server.wsUrl);
    await watcher.hello({ recipient: 'poison-watcher', subs: ['poison.*'] });
    await watcher.next('live');
    const before = { keys: await stored(), seq: await ctx.redis.client.get('dps:{default}:seq') };
    const refusals: [string, string][] = [
      ['poison.a', 'not json'],
      ['poison.a', '{"a":1'],
      ['poison.a', '1 2'],
      ['poison.a', ''],
      ['poison.a', 'NaN'],
      ['poison.a', "{'single':1}"],
      ['poison.a', '"raw\ttab"'],
      ['', '1'],
      ['x'.repeat(257), '1'],
    ];
    for (const [ch, data] of refusals)
      expect([ch.slice(0, 10), data, fcall(ch as string, data as string)]).toMatchObject([
        ch.slice(0, 10),
        data,
        expect.stringMatching(/^bad_request/),
      ]);
    // Bytes that are not UTF-8 (a browser closes the WebSocket on such a text frame), through a client that sends raw bytes.
    const latin1 = Buffer.from('"caf\xe9"', 'latin1');
    await expect(ctx.redis.client.call('FCALL', 'dps_publish', '1', 'dps:{default}', 'poison.a', latin1)).rejects.toThrow(/^bad_request/);
    await expect(ctx.redis.client.call('FCALL', 'dps_publish', '1', 'dps:{default}', Buffer.from([0x70, 0xff]), '1')).rejects.toThrow(
      /^bad_request: the channel/,
    );
    expect({ keys: await stored(), seq: await ctx.redis.client.get('dps:{default}:seq') }).toEqual(before);
    const ok = fcall('poison.a', '"café ✓"').split('\n')[0];
    await watcher.waitFor((f) => f.op === 'msg');
    expect(watcher.frames.slice(2)).toEqual([{ op: 'msg', id: Number(ok), ch: 'poison.a', data: 'café ✓', ts: expect.any(Number) }]);
    watcher.close();
  });

  it('applies the length cap and reports what it removed, as the server does', async () => {
    const c = await RawClient.connect(ctx.server.wsUrl);
    const w = await c.hello({ recipient: 'cap-reader', subs: ['cap.*'] });
    c.close();
    await c.closed();
    const ids = Array.from({ length: 5 }, (_, i) => Number(fcall('cap.x', String(i)).split('\n')[0]));
    const back = await RawClient.connect(ctx.server.wsUrl);
    await back.hello({ recipient: 'cap-reader', subs: ['cap.*'], epoch: w.epoch, lastAckedId: w.resumeFrom });
    await back.next('live');
    expect(back.frames.slice(1).map((f) => (f.op === 'msg' ? f.id : f))).toEqual([
      { op: 'gap', ch: 'cap.x', after: w.resumeFrom, upTo: ids[1], reason: 'retention' },
      ...ids.slice(2),
      { op: 'live', id: ids[4] },
    ]);
    back.close();
  });

  it('works from redis-py, as the README shows', async () => {
    const py = `
import json, sys, redis
r = redis.Redis(port=int(sys.argv[1]))
print(json.dumps(r.fcall('dps_publish', 1, 'dps:{default}', 'py.orders', json.dumps({'order': 42}), 'order-42'), default=lambda b: b.decode()))
try:
    r.fcall('dps_publish', 1, 'dps:{default}', 'py.orders', '{oops')
except redis.ResponseError as e:
    print(str(e).split(':')[0])
`;
    const out = execFileSync('/usr/bin/python3', ['-c', py, String(ctx.redis.port)], { encoding: 'utf8' })
      .trim()
      .split('\n');
    const [id, dup, epoch] = JSON.parse(out[0] as string);
    expect([typeof id, dup, epoch, out[1]]).toEqual(['number', 0, await ctx.redis.client.get('dps:{default}:epoch'), 'bad_request']);
    const c = await RawClient.connect(ctx.server.wsUrl);
    await c.hello({ recipient: 'py-reader', subs: ['py.*'], from: 'earliest' });
    await c.next('live');
    expect(c.msgIds()).toEqual([id]);
    c.close();
  });

  it('is installed again when Redis loses its functions (FUNCTION FLUSH, a fresh Redis)', async () => {
    await ctx.redis.client.call('FUNCTION', 'FLUSH');
    expect(fcall('again.x', '1')).toMatch(/Function not found/);
    expect(await ctx.server.store.installFunctions()).toBe(null);
    expect(fcall('again.x', '1').split('\n')[1]).toBe('0');
  });
});
