// Operator settings that shape who may connect and which log is served: DPS_ALLOWED_ORIGINS, DPS_NAMESPACE, the Redis target.
import { loadConfig } from '@durable-pubsub/server';
import { parseRedisTarget } from '@durable-pubsub/server/src/redis/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpPublish, startTestRedis, startTestServer, type TestRedis, type TestServer } from '../support/env';
import { RawClient } from '../support/raw-client';

let redis: TestRedis;
let blue: TestServer;
let green: TestServer;

beforeAll(async () => {
  redis = await startTestRedis();
  blue = await startTestServer(redis.url, { DPS_NAMESPACE: 'blue', DPS_ALLOWED_ORIGINS: 'https://app.example, https://admin.example' });
  green = await startTestServer(redis.url, { DPS_NAMESPACE: 'green' });
});
afterAll(async () => {
  await blue?.stop();
  await green?.stop();
  await redis?.cleanup();
});

describe('DPS_ALLOWED_ORIGINS', () => {
  it('refuses an upgrade from an unlisted Origin with 403 and accepts listed ones', async () => {
    const bad = new RawClient(blue.wsUrl, { origin: 'https://evil.example' });
    await expect(bad.opened).rejects.toThrow(/403/);
    const good = new RawClient(blue.wsUrl, { origin: 'https://admin.example' });
    await good.opened;
    good.close();
  });
});

describe('DPS_NAMESPACE', () => {
  it('keeps namespaces apart on one Redis: own ids, own messages, keys under the namespace hash tag', async () => {
    const b = await RawClient.connect(blue.wsUrl);
    await b.hello({ recipient: 'same-name', subs: ['*'] });
    const g = await RawClient.connect(green.wsUrl);
    await g.hello({ recipient: 'same-name', subs: ['*'] });
    await Promise.all([b.next('live'), g.next('live')]);
    const rb = await httpPublish(blue, {
      messages: [
        { ch: 'x', data: 'blue-1' },
        { ch: 'x', data: 'blue-2' },
      ],
    });
    const rg = await httpPublish(green, { ch: 'x', data: 'green-1' });
    expect([rb.body.ids, rg.body.id]).toEqual([[1, 2], 1]);
    await b.waitFor((f) => f.id === 2);
    await g.waitFor((f) => f.id === 1);
    expect(b.frames.filter((f) => f.op === 'msg').map((f) => f.data)).toEqual(['blue-1', 'blue-2']);
    expect(g.frames.filter((f) => f.op === 'msg').map((f) => f.data)).toEqual(['green-1']);
    const keys = (await redis.client.keys('*')).sort();
    expect(keys.every((k) => k.startsWith('dps:{blue}:') || k.startsWith('dps:{green}:'))).toBe(true);
    expect(keys.filter((k) => k.includes(':ch:'))).toEqual(['dps:{blue}:ch:x', 'dps:{green}:ch:x']);
    b.close();
    g.close();
  });
});

describe('Redis targets and persistence settings', () => {
  it('reads REDIS_CLUSTER_NODES, REDIS_SENTINELS and REDIS_URL forms, and refuses two at once or a bad DPS_REDIS_FSYNC', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7000,10.0.0.2:7001' }).redisUrl).toBe('redis+cluster://10.0.0.1:7000,10.0.0.2:7001');
    expect(loadConfig({ REDIS_SENTINELS: 'a:26379,b:26380', REDIS_SENTINEL_NAME: 'main' }).redisUrl).toBe(
      'redis+sentinel://a:26379,b:26380/main',
    );
    expect(parseRedisTarget('redis+cluster://10.0.0.1:7000,10.0.0.2')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 6379 },
      ],
      options: {},
    });
    expect(parseRedisTarget('rediss+sentinel://app:s%3Acret@a:26379,b:26380/main')).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 'a', port: 26379 },
        { host: 'b', port: 26380 },
      ],
      name: 'main',
      options: { username: 'app', password: 's:cret', tls: {} },
    });
    expect(parseRedisTarget('redis://h:1/2')).toEqual({ kind: 'single', url: 'redis://h:1/2' });
    expect(() => loadConfig({ REDIS_URL: 'redis://h:1', REDIS_SENTINELS: 'a:1' })).toThrow(
      'set only one of REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS',
    );
    expect(() => loadConfig({ REDIS_URL: 'http://h:1' })).toThrow('REDIS_URL must start with redis://');
    expect(loadConfig({}).redisFsync).toBe('always');
    expect(loadConfig({ DPS_REDIS_FSYNC: 'everysec' }).redisFsync).toBe('everysec');
    expect(() => loadConfig({ DPS_REDIS_FSYNC: 'no' })).toThrow('DPS_REDIS_FSYNC must be always or everysec, got "no"');
  });
});
