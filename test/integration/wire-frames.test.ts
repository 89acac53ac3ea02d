// Every path that sends a frame, Lua-built msg frames included: each frame passes the SDK's guard and is the encoders' text.
import {
  decodeServerFrame,
  encodeAuthed,
  encodeError,
  encodeGap,
  encodeLive,
  encodeMsg,
  encodeMsgs,
  encodePong,
  encodePuback,
  encodeSubbed,
  encodeUnsubbed,
  encodeWelcome,
  MSG_FRAME_PREFIX,
  MSGS_FRAME_CLOSE,
  MSGS_FRAME_OPEN,
  SERVER_OPS,
} from '@durable-pubsub/client-sdk/protocol';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpPublish, startTestServer, type TestServer, until, withServer } from '../support/env';
import { type Frame, RawClient } from '../support/raw-client';

const SECRET = 'wire-frames-secret-that-is-long-enough-0123';
// A short length cap makes retention gaps with one batch publish; two connections per recipient make the third refused.
const env = withServer({ DPS_RETENTION_MAX_LEN: '5', DPS_MAX_CONNECTIONS_PER_RECIPIENT: '2' });
let authed: TestServer;
beforeAll(async () => {
  authed = await startTestServer(env.redis.url, { DPS_JWT_SECRET: SECRET, DPS_NAMESPACE: 'wireauth' });
});
afterAll(async () => {
  await authed?.stop();
});

/** Every client of this file: the last test reads all they received. */
const clients: RawClient[] = [];

async function open(url = env.server.wsUrl): Promise<RawClient> {
  const c = await RawClient.connect(url);
  clients.push(c);
  return c;
}

/** Every frame `c` got, as [text, parsed]. */
const received = (c: RawClient): [string, Frame][] => c.texts.map((t, i) => [t, c.frames[i] as Frame]);
const ofOp = (c: RawClient, op: string) => received(c).filter(([, f]) => f.op === op);

async function publish(ch: string, data: unknown[]): Promise<number[]> {
  const r = await httpPublish(env.server, { messages: data.map((d) => ({ ch, data: d })) });
  expect(r.status).toBe(200);
  return r.body.ids;
}

function mint(sub: string, pub: string[], expIn = 600): Promise<string> {
  return new SignJWT({ dps: { sub: ['*'], pub } })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime(Math.floor(Date.now() / 1000) + expIn)
    .sign(new TextEncoder().encode(SECRET));
}

describe('frames on the wire', () => {
  it('welcome, replayed msg frames (publishmany-n.lua) and live: the encoders write the same text', async () => {
    const ids = await publish('w.replay', [{ n: 1 }, 'two', [3, null]]);
    const c = await open();
    const welcome = await c.hello({ recipient: 'wf-replay', subs: ['w.replay'], from: 'earliest' });
    await c.next('live');
    expect(c.texts[0]).toBe(encodeWelcome(welcome as never));
    const msgs = ofOp(c, 'msg');
    expect(msgs.map(([, f]) => f.id)).toEqual(ids);
    for (const [text, f] of msgs) expect(text).toBe(encodeMsg(f.id, f.ch, f.data, f.ts));
    const [[liveText, live]] = ofOp(c, 'live') as [[string, Frame]];
    expect(liveText).toBe(encodeLive(live.id));
  });

  it('msgs for a hello with batch, each element the stored msg frame', async () => {
    const c = await open();
    await c.hello({ recipient: 'wf-batch', subs: ['w.replay'], from: 'earliest', batch: true });
    await c.next('live');
    const [[text, f]] = ofOp(c, 'msgs') as [[string, Frame]];
    expect(f.msgs.length).toBe(3);
    expect(text).toBe(encodeMsgs(f.msgs));
    expect(text.startsWith(MSGS_FRAME_OPEN + MSG_FRAME_PREFIX) && text.endsWith(MSGS_FRAME_CLOSE)).toBe(true);
  });

  it('welcome with epochChanged for a client whose epoch is gone', async () => {
    const c = await open();
    const w = await c.hello({ recipient: 'wf-epoch', subs: ['w.replay'], epoch: 'not-this-epoch', lastAckedId: 2 });
    expect([w.epochChanged, w.resumeFrom]).toEqual([true, 0]);
    expect(c.texts[0]).toBe(encodeWelcome(w as never));
    await c.next('live');
  });

  it('live msg frames from publishmany-n.lua and from FCALL dps_publish; puback, subbed, unsubbed, pong and error answers', async () => {
    const c = await open();
    await c.hello({ recipient: 'wf-live', subs: ['w.live', 'w.fcall.*'] });
    await c.next('live');
    const [httpId] = await publish('w.live', [{ via: 'http' }]);
    c.send({ op: 'pub', ch: 'w.live', data: { via: 'ws' }, ref: 'p1', key: 'wf-key' });
    c.send({ op: 'pub', ch: 'w.live', data: { via: 'ws again' }, ref: 2, key: 'wf-key' });
    await until(() => ofOp(c, 'puback').length === 2, 5000, 'two pubacks');
    const fcall = async (ch: string, data: string) =>
      ((await env.redis.client.call('FCALL', 'dps_publish', '1', 'dps:{default}', ch, data)) as [number, number, string])[0];
    const fcallId = await fcall('w.live', '{"via":"fcall"}');
    // The caller's data text goes into the frame as it was given; cjson writes the channel (`/` as `\/`).
    const oddId = await fcall('w.fcall.a/b', ' [1, "é"] ');
    c.send({ op: 'sub', pattern: 'w.s.*', ref: 's1' });
    c.send({ op: 'sub', pattern: 'w.t.*', ref: 7 });
    await until(() => ofOp(c, 'subbed').length === 2, 5000, 'two subbed');
    c.send({ op: 'unsub', pattern: 'w.s.*', ref: 'u1' });
    c.send({ op: 'unsub', pattern: 'w.t.*', ref: 8.5 });
    c.send({ op: 'unsub', pattern: 'w.none' });
    c.send({ op: 'ping' });
    c.send({ op: 'teleport', ref: 'e1' });
    await until(() => c.frames.some((f) => f.op === 'msg' && f.id === oddId) && ofOp(c, 'unsubbed').length === 3, 5000, 'every answer');
    await c.next('error');

    const pubacks = ofOp(c, 'puback');
    expect(pubacks.map(([, f]) => f)).toEqual([
      { op: 'puback', ref: 'p1', id: pubacks[0]?.[1].id },
      { op: 'puback', ref: 2, id: pubacks[0]?.[1].id, dup: true },
    ]);
    for (const [text, f] of pubacks) expect(text).toBe(encodePuback(f.ref, f.id, f.dup === true));
    const msgs = ofOp(c, 'msg');
    expect(msgs.map(([, f]) => f.id)).toEqual([httpId, pubacks[0]?.[1].id, fcallId, oddId]);
    for (const [text, f] of msgs.slice(0, 3)) expect(text).toBe(encodeMsg(f.id, f.ch, f.data, f.ts));
    const [oddText, odd] = msgs[3] as [string, Frame];
    expect([odd.ch, odd.data, oddText.startsWith(`${MSG_FRAME_PREFIX}${oddId},`)]).toEqual(['w.fcall.a/b', [1, 'é'], true]);
    expect(ofOp(c, 'subbed').map(([t, f]) => [f.ref, t === encodeSubbed(f.pattern, f.ref)])).toEqual([
      ['s1', true],
      [7, true],
    ]);
    expect(ofOp(c, 'unsubbed').map(([t, f]) => [f.ref, t === encodeUnsubbed(f.pattern, f.ref)])).toEqual([
      ['u1', true],
      [8.5, true],
      [undefined, true],
    ]);
    expect(ofOp(c, 'pong').map(([t]) => t)).toEqual([encodePong()]);
    expect(ofOp(c, 'error').map(([t]) => t)).toEqual([encodeError('bad_request', 'unknown op "teleport"', 'e1')]);
  });

  it('replays FCALL-built frames as they were stored, in a msgs frame', async () => {
    const c = await open();
    await c.hello({ recipient: 'wf-fcall-replay', subs: ['w.fcall.*'], from: 'earliest', batch: true });
    await c.next('live');
    const [[, f]] = ofOp(c, 'msgs') as [[string, Frame]];
    expect(f.msgs.map((m: Frame) => [m.ch, m.data])).toEqual([['w.fcall.a/b', [1, 'é']]]);
  });

  it('gap (retention) for messages the length cap removed before the recipient acked them', async () => {
    const first = await open();
    await first.hello({ recipient: 'wf-gap', subs: ['w.gap'] });
    await first.next('live');
    first.close();
    await first.closed();
    const ids = await publish('w.gap', [1, 2, 3, 4, 5, 6, 7, 8]);
    const c = await open();
    await c.hello({ recipient: 'wf-gap', subs: ['w.gap'] });
    await c.next('live');
    const [[text, gap]] = ofOp(c, 'gap') as [[string, Frame]];
    expect(gap).toEqual({ op: 'gap', ch: 'w.gap', after: (ids[0] as number) - 1, upTo: ids[2], reason: 'retention' });
    expect(text).toBe(encodeGap(gap.ch, gap.after, gap.upTo, gap.reason));
    expect(c.msgIds()).toEqual(ids.slice(3));
  });

  it('gap (invalid) for a message stored around the server, live and in a checked replay', async () => {
    const c = await open();
    await c.hello({ recipient: 'wf-invalid', subs: ['w.bad'] });
    await c.next('live');
    // What a client writing to Redis on its own could store: data that is not JSON.
    const bad = await env.redis.client.incr('dps:{default}:seq');
    const frame = `{"op":"msg","id":${bad},"ch":"w.bad","data":{oops,"ts":1}`;
    await env.redis.client.zadd('dps:{default}:ch:w.bad', bad, frame);
    await env.redis.client.zadd('dps:{default}:index', bad, 'w.bad');
    await env.redis.client.spublish('dps:{default}:live', frame);
    const [good] = await publish('w.bad', ['fine']);
    await until(() => c.msgIds().includes(good as number), 5000, 'the message after it');
    const expected = encodeGap('w.bad', bad - 1, bad, 'invalid');
    expect(ofOp(c, 'gap').map(([t]) => t)).toEqual([expected]);

    const checked = await open();
    checked.send({ op: 'hello', v: 1, recipient: 'wf-checked', subs: ['w.bad'], from: 'earliest', checked: true });
    await checked.next('live');
    expect(ofOp(checked, 'gap').map(([t]) => t)).toEqual([expected]);
    expect(checked.msgIds()).toEqual([good]);
  });

  it('errors that end a connection: rate_limited (connections per recipient) and bad_request (too many patterns)', async () => {
    const two = [await open(), await open()];
    for (const c of two) await c.hello({ recipient: 'wf-many', subs: [] });
    const third = await open();
    third.send({ op: 'hello', v: 1, recipient: 'wf-many', subs: [] });
    expect(await third.closed()).toBe(4429);
    expect(ofOp(third, 'error').map(([, f]) => f.code)).toEqual(['rate_limited']);

    const greedy = await open();
    greedy.send({ op: 'hello', v: 1, recipient: 'wf-greedy', subs: Array.from({ length: 101 }, (_, i) => `p${i}`) });
    expect(await greedy.closed()).toBe(4400);
    expect(ofOp(greedy, 'error').map(([, f]) => f.code)).toEqual(['bad_request']);
  });

  it('authed, and the errors of auth: unauthorized (bad token) and forbidden (publish not granted)', async () => {
    const c = await open(authed.wsUrl);
    c.send({ op: 'hello', v: 1, recipient: 'wf-auth', subs: ['*'], token: await mint('wf-auth', ['w.ok']) });
    await c.next('live');
    const fresh = await mint('wf-auth', ['w.ok'], 1200);
    c.send({ op: 'auth', token: fresh });
    const a = await c.next('authed');
    expect(a.exp).toBe(JSON.parse(Buffer.from(fresh.split('.')[1] as string, 'base64url').toString()).exp);
    expect(ofOp(c, 'authed')[0]?.[0]).toBe(encodeAuthed(a.exp));
    c.send({ op: 'auth', token: 'not.a.jwt' });
    c.send({ op: 'pub', ch: 'w.no', data: 1, ref: 'f1' });
    c.send({ op: 'pub', ch: 'w.ok', data: 1, ref: 'ok' });
    await until(() => ofOp(c, 'error').length === 2 && ofOp(c, 'puback').length === 1, 5000, 'the answers');
    expect(
      ofOp(c, 'error')
        .map(([, f]) => [f.code, f.ref])
        .sort(),
    ).toEqual([
      ['forbidden', 'f1'],
      ['unauthorized', undefined],
    ]);
    expect(c.closeCode).toBe(null);

    const refused = await open(authed.wsUrl);
    refused.send({ op: 'hello', v: 1, recipient: 'wf-auth', subs: ['*'], token: await mint('someone-else', []) });
    expect(await refused.closed()).toBe(4401);
    expect(ofOp(refused, 'error').map(([, f]) => f.code)).toEqual(['unauthorized']);
  });

  it('every frame of every path above passes decodeServerFrame, and they cover exactly the server ops', () => {
    const all = clients.flatMap(received);
    const failed = all.map(([text]) => [text, decodeServerFrame(text)] as const).filter(([, d]) => !d.ok);
    expect(failed).toEqual([]);
    expect([...new Set(all.map(([, f]) => f.op))].sort()).toEqual([...SERVER_OPS].sort());
    // msg frames from the Lua scripts all start with the prefix the server reads ids at
    for (const [text, f] of all) if (f.op === 'msg') expect(text.startsWith(`${MSG_FRAME_PREFIX}${f.id},`)).toBe(true);
    expect(new Set(all.filter(([, f]) => f.op === 'error').map(([, f]) => f.code))).toEqual(
      new Set(['bad_request', 'rate_limited', 'unauthorized', 'forbidden']),
    );
    expect(all.length).toBeGreaterThan(40);
  });
});

afterAll(() => {
  for (const c of clients) c.terminate();
});
