// Server frame encoders: the exact text the server has always sent, refs echoed as given, and every op passes the guard.
import { describe, expect, it } from 'vitest';
import { decodeServerFrame } from './decode-server';
import {
  encodeAuthed,
  encodeError,
  encodeGap,
  encodeLive,
  encodeMsg,
  encodeMsgs,
  encodePong,
  encodePuback,
  encodeServerFrame,
  encodeSubbed,
  encodeUnsubbed,
  encodeWelcome,
  MSG_FRAME_PREFIX,
  MSGS_FRAME_CLOSE,
  MSGS_FRAME_OPEN,
} from './encode';
import { SERVER_OPS } from './ops';
import type { MsgFrame, ServerFrame } from './types';

const welcome = { conn: 'c"1', recipient: 'dash-é', epoch: 'Ab_9', resumeFrom: 41, head: 57 };
const m1: MsgFrame = { op: 'msg', id: 42, ch: 'orders.eu', data: { order: 42, note: 'a "q" \u2028 😀' }, ts: 1732000000123 };
const m2: MsgFrame = { op: 'msg', id: 43, ch: 'a/b', data: [1, null, true, 'x'], ts: 1732000000124 };

/** Each encoder's text next to the text the server sent before the encoders existed (fields in the same order). */
const CASES: [string, string][] = [
  [encodeWelcome(welcome), '{"op":"welcome","v":1,"conn":"c\\"1","recipient":"dash-é","epoch":"Ab_9","resumeFrom":41,"head":57}'],
  [
    encodeWelcome({ ...welcome, epochChanged: true }),
    `{"op":"welcome","v":1,"conn":"c\\"1","recipient":"dash-é","epoch":"Ab_9","resumeFrom":41,"head":57,"epochChanged":true}`,
  ],
  [encodeMsg(m1.id, m1.ch, m1.data, m1.ts), JSON.stringify(m1)],
  [encodeMsg(7, 'c', null, 1), '{"op":"msg","id":7,"ch":"c","data":null,"ts":1}'],
  [encodeMsgs([m1, m2]), `{"op":"msgs","msgs":[${JSON.stringify(m1)},${JSON.stringify(m2)}]}`],
  [encodeLive(57), '{"op":"live","id":57}'],
  [encodeGap('c', 3, 9, 'retention'), '{"op":"gap","ch":"c","after":3,"upTo":9,"reason":"retention"}'],
  [encodeGap('c', 8, 9, 'invalid'), '{"op":"gap","ch":"c","after":8,"upTo":9,"reason":"invalid"}'],
  [encodeSubbed('a.*'), '{"op":"subbed","pattern":"a.*"}'],
  [encodeSubbed('a.*', 's1'), '{"op":"subbed","pattern":"a.*","ref":"s1"}'],
  [encodeUnsubbed('a.*', 3.5), '{"op":"unsubbed","pattern":"a.*","ref":3.5}'],
  [encodePuback('1', 18), '{"op":"puback","ref":"1","id":18}'],
  [encodePuback(1, 18, true), '{"op":"puback","ref":1,"id":18,"dup":true}'],
  [encodePuback(undefined, 18, false), '{"op":"puback","id":18}'],
  [encodePuback(0, 18), '{"op":"puback","ref":0,"id":18}'],
  [encodeAuthed(1732000900), '{"op":"authed","exp":1732000900}'],
  [encodePong(), '{"op":"pong"}'],
  [encodeError('bad_request', 'unknown op "x"'), '{"op":"error","code":"bad_request","message":"unknown op \\"x\\""}'],
  [encodeError('forbidden', 'no', 'r9'), '{"op":"error","code":"forbidden","message":"no","ref":"r9"}'],
  [encodeError('rate_limited', 'slow down', -2), '{"op":"error","code":"rate_limited","message":"slow down","ref":-2}'],
];

describe('server frame encoders', () => {
  it('write the exact text the server sends, field order included', () => {
    for (const [got, want] of CASES) expect(got).toBe(want);
  });

  it('write JSON that reads back as the frame, and a ref as the type it was given', () => {
    expect(JSON.parse(encodeMsgs([m1, m2]))).toEqual({ op: 'msgs', msgs: [m1, m2] });
    expect(JSON.parse(encodeSubbed('p', '7')).ref).toBe('7');
    expect(JSON.parse(encodeSubbed('p', 7)).ref).toBe(7);
    expect(JSON.parse(encodePuback('\u2028"', 1)).ref).toBe('\u2028"');
  });

  it('start a msg frame with MSG_FRAME_PREFIX and wrap msgs in MSGS_FRAME_OPEN / MSGS_FRAME_CLOSE', () => {
    expect(encodeMsg(123, 'c', 1, 2).startsWith(`${MSG_FRAME_PREFIX}123,`)).toBe(true);
    expect(encodeMsgs([m1])).toBe(`${MSGS_FRAME_OPEN}${encodeMsg(m1.id, m1.ch, m1.data, m1.ts)}${MSGS_FRAME_CLOSE}`);
  });

  it('give every server op a frame that passes the guard, the same from encodeServerFrame', () => {
    const frames: ServerFrame[] = [
      { op: 'welcome', v: 1, ...welcome, epochChanged: true },
      m1,
      { op: 'msgs', msgs: [m1, m2] },
      { op: 'live', id: 1 },
      { op: 'gap', ch: 'c', after: 1, upTo: 2, reason: 'retention' },
      { op: 'subbed', pattern: 'p', ref: 1 },
      { op: 'unsubbed', pattern: 'p' },
      { op: 'puback', ref: 'x', id: 5, dup: true },
      { op: 'authed', exp: 99 },
      { op: 'pong' },
      { op: 'error', code: 'internal', message: 'internal error', ref: 'q' },
    ];
    expect(frames.map((f) => f.op).sort()).toEqual([...SERVER_OPS].sort());
    for (const f of frames) {
      const text = encodeServerFrame(f);
      // The frames above list their fields in the server's order: the encoder writes exactly JSON.stringify's text.
      expect(text).toBe(JSON.stringify(f));
      expect([f.op, decodeServerFrame(text)]).toEqual([f.op, { ok: true, frame: f }]);
    }
  });
});
