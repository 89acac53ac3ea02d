// Token handling of the SDK: a fresh token per connection, refreshed in-band (auth op) before it expires.
// The real server gets JWT auth in a later issue; until then a minimal protocol peer records what the SDK sends.
import { createClient, memoryStorage } from '@durable-pubsub/client-sdk';
import { describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { until } from '../support/env';

const jwt = (exp: number, n: number) =>
  `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'r', exp, n })).toString('base64url')}.sig`;

describe('SDK tokens', () => {
  it('sends a fresh token in hello and refreshes it with auth before exp', async () => {
    const wss = new WebSocketServer({ port: 0 });
    const frames: { op: string; token?: string }[] = [];
    wss.on('connection', (ws) => {
      ws.on('message', (d) => {
        const f = JSON.parse(String(d));
        frames.push(f);
        if (f.op === 'hello')
          ws.send(JSON.stringify({ op: 'welcome', v: 1, conn: 'c', recipient: 'r', epoch: 'e', resumeFrom: 0, head: 0 }));
        if (f.op === 'auth') ws.send(JSON.stringify({ op: 'authed', exp: Math.floor(Date.now() / 1000) + 60 }));
      });
    });
    let n = 0;
    const c = createClient({
      url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`,
      recipient: 'r',
      storage: memoryStorage(),
      WebSocket,
      getToken: () => jwt(Math.floor(Date.now() / 1000) + 2, ++n),
    });
    await until(() => frames.some((f) => f.op === 'auth'), 5000, 'an auth frame');
    const nth = (t?: string) => JSON.parse(Buffer.from(t?.split('.')[1] ?? '', 'base64url').toString()).n;
    // The first connection's hello carries token #1; the in-band refresh carries token #2.
    expect(frames.map((f) => [f.op, nth(f.token)])).toEqual([
      ['hello', 1],
      ['auth', 2],
    ]);
    c.close();
    wss.close();
  });
});

describe('SDK bad input', () => {
  it('reports an unusable URL as an error and closes instead of throwing', async () => {
    const errors: string[] = [];
    const c = createClient({ url: 'not a url', recipient: 'r', storage: memoryStorage(), WebSocket });
    c.on('error', (e) => errors.push(e.code));
    await until(() => c.state === 'closed', 2000, 'closed');
    expect(errors).toEqual(['bad_url']);
  });
});
