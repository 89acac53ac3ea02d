// Authentication and grants: the token matrix, expiry and in-band refresh, read/publish/admin grants, Origin.
import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpPublish, sleep, startTestRedis, startTestServer, type TestRedis, type TestServer } from '../support/env';
import { RawClient } from '../support/raw-client';

const SECRET = 'test-secret-that-is-long-enough-0123456789';
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PUBLIC_PEM = publicKey.export({ type: 'spki', format: 'pem' }).toString();

let redis: TestRedis;
let hs: TestServer;
let rs: TestServer;

beforeAll(async () => {
  redis = await startTestRedis();
  hs = await startTestServer(redis.url, { DPS_JWT_SECRET: SECRET, DPS_NAMESPACE: 'hs' });
  rs = await startTestServer(redis.url, { DPS_JWT_PUBLIC_KEY: PUBLIC_PEM, DPS_NAMESPACE: 'rs' });
});
afterAll(async () => {
  await hs?.stop();
  await rs?.stop();
  await redis?.cleanup();
});

interface Claims {
  sub?: string;
  exp?: number;
  read?: string[];
  pub?: string[];
  admin?: boolean;
}
const now = () => Math.floor(Date.now() / 1000);

function mint(
  c: Claims,
  key: Uint8Array | ReturnType<typeof generateKeyPairSync>['privateKey'] = new TextEncoder().encode(SECRET),
  alg = 'HS256',
) {
  const jwt = new SignJWT({ dps: { sub: c.read ?? ['*'], pub: c.pub ?? [], admin: c.admin ?? false } }).setProtectedHeader({ alg });
  if (c.sub) jwt.setSubject(c.sub);
  if (c.exp !== undefined) jwt.setExpirationTime(c.exp);
  return jwt.sign(key as Uint8Array);
}

async function helloWith(server: TestServer, token: string | undefined, recipient = 'alice', subs = ['*']) {
  const c = await RawClient.connect(server.wsUrl);
  c.send({ op: 'hello', v: 1, recipient, subs, ...(token === undefined ? {} : { token }) });
  await c.waitFor((f) => f.op === 'welcome' || f.op === 'error');
  return c;
}

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('token matrix', () => {
  it('refuses missing, malformed, badly signed, unsigned (alg none), expired and other-recipient tokens with 4401', async () => {
    const cases: [string, string | undefined][] = [
      ['missing', undefined],
      ['malformed', 'not.a.jwt'],
      ['wrong signature', await mint({ sub: 'alice', exp: now() + 60 }, new TextEncoder().encode('another-secret-another-secret-another'))],
      ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'alice', exp: now() + 60, dps: { sub: ['*'] } })}.`],
      ['expired', await mint({ sub: 'alice', exp: now() - 10 })],
      ['no exp', await mint({ sub: 'alice' })],
      ['sub is another recipient', await mint({ sub: 'bob', exp: now() + 60 })],
    ];
    for (const [name, token] of cases) {
      const c = await helloWith(hs, token);
      expect([name, await c.closed(), c.frames[0]?.op, c.frames[0]?.code]).toEqual([name, 4401, 'error', 'unauthorized']);
    }
    const ok = await helloWith(hs, await mint({ sub: 'alice', exp: now() + 60 }));
    expect(ok.frames[0]?.op).toBe('welcome');
    ok.close();
  });

  it('with an EC public key, accepts ES256 and refuses RS256 and HS256', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const es = await startTestServer(redis.url, {
      DPS_JWT_PUBLIC_KEY: ec.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      DPS_NAMESPACE: 'es',
    });
    try {
      const good = await helloWith(es, await mint({ sub: 'alice', exp: now() + 60 }, ec.privateKey, 'ES256'));
      expect(good.frames[0]?.op).toBe('welcome');
      good.close();
      for (const token of [
        await mint({ sub: 'alice', exp: now() + 60 }, privateKey, 'RS256'),
        await mint({ sub: 'alice', exp: now() + 60 }),
      ])
        expect(await (await helloWith(es, token)).closed()).toBe(4401);
    } finally {
      await es.stop();
    }
  });

  it('with a public key, accepts RS256 and refuses an HS256 token signed with the public key as secret', async () => {
    const good = await helloWith(rs, await mint({ sub: 'alice', exp: now() + 60 }, privateKey, 'RS256'));
    expect(good.frames[0]?.op).toBe('welcome');
    good.close();
    const confused = await helloWith(rs, await mint({ sub: 'alice', exp: now() + 60 }, new TextEncoder().encode(PUBLIC_PEM)));
    expect(await confused.closed()).toBe(4401);
  });

  it('closes with 4401 when the token expires, unless refreshed with auth (same sub only)', async () => {
    const expiring = await helloWith(hs, await mint({ sub: 'alice', exp: now() + 1 }));
    const refreshed = await helloWith(hs, await mint({ sub: 'alice', exp: now() + 2 }));
    refreshed.send({ op: 'auth', token: await mint({ sub: 'bob', exp: now() + 60 }) });
    expect(await refreshed.next('error')).toMatchObject({ op: 'error', code: 'unauthorized' });
    const exp = now() + 60;
    refreshed.send({ op: 'auth', token: await mint({ sub: 'alice', exp }) });
    expect(await refreshed.next('authed')).toEqual({ op: 'authed', exp });
    expect(await expiring.closed(4000)).toBe(4401);
    await sleep(2500);
    expect(refreshed.closeCode).toBe(null);
    refreshed.close();
  });
});

describe('grants', () => {
  it('delivers live and replayed messages only on channels the token may read, whatever the patterns', async () => {
    const token = await mint({ sub: 'reader', exp: now() + 60, read: ['news.*'] });
    const pub = await mint({ sub: 'publisher', exp: now() + 60, pub: ['*'] });
    const auth = { authorization: `Bearer ${pub}` };
    const post = (body: unknown) =>
      fetch(`${hs.url}/v1/publish`, { method: 'POST', headers: auth, body: JSON.stringify(body) }).then(
        (r) => r.json() as Promise<{ ids: number[] }>,
      );
    const c = await helloWith(hs, token, 'reader', ['*']);
    await c.next('live');
    const live = (
      await post({
        messages: [
          { ch: 'news.a', data: 1 },
          { ch: 'secret.a', data: 2 },
          { ch: 'news.b', data: 3 },
        ],
      })
    ).ids;
    await c.waitFor((f) => f.id === live[2]);
    expect(c.msgIds()).toEqual([live[0], live[2]]);
    c.close();
    await c.closed();
    const missed = (
      await post({
        messages: [
          { ch: 'secret.b', data: 4 },
          { ch: 'news.c', data: 5 },
        ],
      })
    ).ids;
    const back = await helloWith(hs, token, 'reader', ['*']);
    await back.next('live');
    // Nothing was acked, so the replay starts at the beginning: every readable id, no secret.* one.
    expect(back.msgIds()).toEqual([live[0], live[2], missed[1]]);
    back.close();
  });

  it('publishes only where the pub grant allows, over WebSocket and HTTP', async () => {
    const token = await mint({ sub: 'writer', exp: now() + 60, pub: ['out.*'] });
    const c = await helloWith(hs, token, 'writer', []);
    c.send({ op: 'pub', ch: 'in.x', data: 1, ref: 'no' });
    c.send({ op: 'pub', ch: 'out.x', data: 1, ref: 'yes' });
    await c.waitFor((f) => f.ref === 'yes');
    expect(c.frames.filter((f) => f.ref).map((f) => [f.op, f.ref, f.code])).toEqual([
      ['error', 'no', 'forbidden'],
      ['puback', 'yes', undefined],
    ]);
    c.close();
    const anonymous = await httpPublish(hs, { ch: 'out.x', data: 1 });
    expect([anonymous.status, anonymous.body.error.code]).toEqual([401, 'unauthorized']);
    const call = (ch: string) =>
      fetch(`${hs.url}/v1/publish`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: JSON.stringify({ ch, data: 1 }),
      });
    expect([(await call('in.x')).status, (await call('out.y')).status]).toEqual([403, 200]);
  });

  it('keeps the admin routes for tokens with dps.admin', async () => {
    const get = async (token?: string) =>
      (await fetch(`${hs.url}/v1/recipients`, { headers: token ? { authorization: `Bearer ${token}` } : {} })).status;
    expect([
      await get(),
      await get(await mint({ sub: 'x', exp: now() + 60 })),
      await get(await mint({ sub: 'x', exp: now() + 60, admin: true })),
    ]).toEqual([401, 403, 200]);
  });
});

describe('Origin while auth is on', () => {
  it('accepts the server’s own host and refuses others when no allowlist is set', async () => {
    const host = new URL(hs.url).host;
    const evil = new RawClient(hs.wsUrl, { origin: 'https://evil.example' });
    await expect(evil.opened).rejects.toThrow(/403/);
    const same = new RawClient(hs.wsUrl, { origin: `http://${host}` });
    await same.opened;
    same.close();
  });
});

describe('ack abuse', () => {
  it('an ack beyond what the connection was sent moves its own position only up to what it was sent', async () => {
    const pub = await mint({ sub: 'p', exp: now() + 60, pub: ['*'] });
    const post = (ch: string) =>
      fetch(`${hs.url}/v1/publish`, {
        method: 'POST',
        headers: { authorization: `Bearer ${pub}` },
        body: JSON.stringify({ ch, data: 1 }),
      }).then((r) => r.json() as Promise<{ id: number }>);
    const victim = await helloWith(hs, await mint({ sub: 'victim', exp: now() + 60, read: ['ab.*'] }), 'victim', ['ab.*']);
    await victim.next('live');
    victim.close();
    const acker = await helloWith(hs, await mint({ sub: 'acker', exp: now() + 60, read: ['ab.*'] }), 'acker', ['ab.*']);
    await acker.next('live');
    const first = await post('ab.x');
    await acker.waitFor((f) => f.id === first.id);
    acker.send({ op: 'ack', id: 9_000_000 });
    const later = await post('ab.x');
    await acker.waitFor((f) => f.id === later.id);
    const stored = async (r: string) => Number(await redis.client.hget(`dps:{hs}:r:${r}`, 'acked'));
    // Its own position moved to what it had been sent when it acked, not to 9,000,000; the victim's did not move.
    await sleep(100);
    expect([await stored('acker'), await stored('victim')]).toEqual([first.id, first.id - 1]);
    await hs.janitor.runOnce(true);
    expect((await redis.client.zrangebyscore('dps:{hs}:ch:ab.x', '-inf', '+inf')).map((f) => JSON.parse(f).id)).toEqual([
      first.id,
      later.id,
    ]);
    acker.close();
  });
});
