// Operator settings that shape who may connect and which log is served: DPS_ALLOWED_ORIGINS, DPS_NAMESPACE.
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
