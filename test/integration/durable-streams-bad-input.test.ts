// Bad input at /v1/stream gets a clear status and a JSON error, never a crash, and nobody else loses anything.
import { expect, it } from 'vitest';
import { withServer } from '../support/env';

const ctx = withServer();

it('answers bad requests with their status and a JSON error, and keeps serving the stream', async () => {
  const url = (p = 'bad.s') => `${ctx.server.url}/v1/stream/${p}`;
  expect((await fetch(url(), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '[{"a":1}]' })).status).toBe(201);
  const cases: [string, Promise<Response>, number][] = [
    ['malformed percent-encoding', fetch(url('bad%zz')), 400],
    ['no path', fetch(`${ctx.server.url}/v1/stream/`), 400],
    ['an offset this server never made', fetch(`${url()}?offset=abc`), 400],
    ['an offset past the tail', fetch(`${url()}?offset=0000000000000000_0000000000009999`), 400],
    ['an unknown live mode', fetch(`${url()}?offset=-1&live=websocket`), 400],
    ['a live read without an offset', fetch(`${url()}?live=long-poll`), 400],
    ['a TTL with a plus sign', fetch(url('bad.t'), { method: 'PUT', headers: { 'stream-ttl': '+5' } }), 400],
    ['a date that is not RFC 3339', fetch(url('bad.t'), { method: 'PUT', headers: { 'stream-expires-at': 'tomorrow' } }), 400],
    [
      'a fork offset this server never made',
      fetch(url('bad.f'), { method: 'PUT', headers: { 'stream-forked-from': '/v1/stream/bad.s', 'stream-fork-offset': 'x' } }),
      400,
    ],
    ['a fork of nothing', fetch(url('bad.f'), { method: 'PUT', headers: { 'stream-forked-from': '/v1/stream/none' } }), 404],
    ['JSON that is not JSON', fetch(url(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":' }), 400],
    ['an empty JSON array', fetch(url(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[]' }), 400],
    ['an empty body', fetch(url(), { method: 'POST', headers: { 'content-type': 'application/json' } }), 400],
    [
      'one producer header of three',
      fetch(url(), { method: 'POST', headers: { 'content-type': 'application/json', 'producer-id': 'p' }, body: '1' }),
      400,
    ],
    [
      'a producer epoch past 2^53-1',
      fetch(url(), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'producer-id': 'p', 'producer-epoch': '9007199254740993', 'producer-seq': '0' },
        body: '1',
      }),
      400,
    ],
    [
      'a body past 8 MiB',
      fetch(url(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.alloc(9 << 20, 0x20) }),
      413,
    ],
    ['a method streams do not have', fetch(url(), { method: 'PATCH' }), 405],
  ];
  const got: [string, number, string | null][] = [];
  for (const [what, p, want] of cases) {
    const r = await p;
    got.push([what, r.status, r.status === want ? r.headers.get('content-type') : await r.text()]);
  }
  expect(got).toEqual(cases.map(([what, , want]) => [what, want, 'application/json; charset=utf-8']));
  const r = await fetch(url());
  expect([r.status, await r.text()]).toEqual([200, '[{"a":1}]']);
});
