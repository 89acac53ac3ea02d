// Frame guards: what a well-formed client frame is, and that only known fields survive.
import { describe, expect, it } from 'vitest';
import { decodeClientFrame, isValidChannel } from './decode';

describe('decodeClientFrame', () => {
  it('accepts each op and keeps only known fields', () => {
    expect(
      decodeClientFrame('{"op":"hello","v":1,"recipient":"r","subs":["a.*","a.*"],"lastAckedId":5,"epoch":"e","from":"earliest","x":1}'),
    ).toEqual({
      ok: true,
      frame: { op: 'hello', v: 1, recipient: 'r', subs: ['a.*'], lastAckedId: 5, epoch: 'e', from: 'earliest' },
    });
    expect(decodeClientFrame('{"op":"hello","v":1,"recipient":"r","subs":[],"batch":true}')).toEqual({
      ok: true,
      frame: { op: 'hello', v: 1, recipient: 'r', subs: [], batch: true },
    });
    expect(decodeClientFrame('{"op":"hello","v":1,"recipient":"r","subs":[],"batch":false}')).toEqual({
      ok: true,
      frame: { op: 'hello', v: 1, recipient: 'r', subs: [] },
    });
    expect(decodeClientFrame('{"op":"ack","id":7}')).toEqual({ ok: true, frame: { op: 'ack', id: 7 } });
    expect(decodeClientFrame('{"op":"sub","pattern":"p","ref":"1"}')).toEqual({ ok: true, frame: { op: 'sub', pattern: 'p', ref: '1' } });
    expect(decodeClientFrame('{"op":"unsub","pattern":"p"}')).toEqual({ ok: true, frame: { op: 'unsub', pattern: 'p' } });
    expect(decodeClientFrame('{"op":"pub","ch":"c","data":null,"key":"k"}')).toEqual({
      ok: true,
      frame: { op: 'pub', ch: 'c', data: null, key: 'k' },
    });
    expect(decodeClientFrame('{"op":"auth","token":"t"}')).toEqual({ ok: true, frame: { op: 'auth', token: 't' } });
    expect(decodeClientFrame('{"op":"ping"}')).toEqual({ ok: true, frame: { op: 'ping' } });
  });

  it('does not let __proto__ keys reach the frame', () => {
    const r = decodeClientFrame('{"op":"ack","id":1,"__proto__":{"polluted":true}}');
    expect(r).toEqual({ ok: true, frame: { op: 'ack', id: 1 } });
    expect(({} as Record<string, unknown>).polluted).toBe(undefined);
  });

  it('names what is wrong', () => {
    const cases: [string, string][] = [
      ['nope', 'not_json'],
      ['[1]', 'bad_frame'],
      ['null', 'bad_frame'],
      ['{"op":5}', 'bad_frame'],
      ['{"op":"fly"}', 'unknown_op'],
      ['{"op":"hello","v":1,"recipient":"r","subs":[],"batch":1}', 'bad_frame'],
      ['{"op":"ack","id":-1}', 'bad_frame'],
      ['{"op":"ack","id":1.5}', 'bad_frame'],
      ['{"op":"ack","id":9007199254740992}', 'bad_frame'],
      ['{"op":"pub","ch":"c"}', 'bad_frame'],
      ['{"op":"pub","ch":"","data":1}', 'bad_frame'],
      ['{"op":"sub","pattern":""}', 'bad_frame'],
      ['{"op":"auth"}', 'bad_frame'],
      ['{"op":"hello","v":1,"recipient":"","subs":[]}', 'bad_frame'],
      ['{"op":"ping","ref":true}', 'bad_frame'],
      ['{"op":"sub","pattern":"p","ref":{"a":1}}', 'bad_frame'],
      ['{"op":"sub","pattern":"p","ref":[1]}', 'bad_frame'],
      ['{"op":"sub","pattern":"p","ref":null}', 'bad_frame'],
    ];
    for (const [text, error] of cases)
      expect([text, decodeClientFrame(text).ok ? 'ok' : (decodeClientFrame(text) as { error: string }).error]).toEqual([text, error]);
  });

  it('keeps the ref of a bad request so the error can answer it', () => {
    expect(decodeClientFrame('{"op":"pub","ch":"","data":1,"ref":"r9"}')).toMatchObject({ ok: false, ref: 'r9' });
    expect(decodeClientFrame('{"op":"pub","ch":"","data":1,"ref":9}')).toMatchObject({ ok: false, ref: 9 });
  });

  it('takes a ref that is a string or a number, as JSON-RPC ids', () => {
    expect(decodeClientFrame('{"op":"pub","ch":"c","data":1,"ref":1}')).toEqual({
      ok: true,
      frame: { op: 'pub', ch: 'c', data: 1, ref: 1 },
    });
    expect(decodeClientFrame('{"op":"unsub","pattern":"p","ref":-2.5}')).toEqual({
      ok: true,
      frame: { op: 'unsub', pattern: 'p', ref: -2.5 },
    });
    expect(decodeClientFrame('{"op":"ping","ref":5}')).toEqual({ ok: true, frame: { op: 'ping' } });
  });
});

describe('isValidChannel', () => {
  it('takes 1 to 256 bytes of well-formed UTF-8', () => {
    expect(isValidChannel('a'.repeat(256))).toBe(true);
    expect(isValidChannel('a'.repeat(257))).toBe(false);
    expect(isValidChannel('é'.repeat(128))).toBe(true); // 256 bytes
    expect(isValidChannel('é'.repeat(129))).toBe(false);
    expect(isValidChannel('\ud800x')).toBe(false);
    expect(isValidChannel('😀')).toBe(true);
    expect(isValidChannel('')).toBe(false);
    expect(isValidChannel(5)).toBe(false);
  });
});
