// The server-frame guard: every op's valid frames pass, each field missing or mistyped fails, unknown ops are told apart.
import { describe, expect, it } from 'vitest';
import { decodeServerFrame, toServerFrame } from './decode-server';
import { SERVER_OPS } from './ops';

const msg = { op: 'msg', id: 7, ch: 'orders.eu', data: { order: 42 }, ts: 1732000000000 };

/** A valid frame of each op, with every optional field present. */
const FULL: Record<string, Record<string, unknown>> = {
  welcome: { op: 'welcome', v: 1, conn: 'c1', recipient: 'r', epoch: 'e', resumeFrom: 0, head: 9, epochChanged: true },
  msg,
  msgs: { op: 'msgs', msgs: [msg, { ...msg, id: 8, data: null }] },
  live: { op: 'live', id: 9 },
  gap: { op: 'gap', ch: 'c', after: 1, upTo: 4, reason: 'retention' },
  subbed: { op: 'subbed', pattern: 'a.*', ref: 'r1' },
  unsubbed: { op: 'unsubbed', pattern: 'a.*', ref: 2 },
  puback: { op: 'puback', ref: 'p', id: 3, dup: true },
  authed: { op: 'authed', exp: 1732000000 },
  pong: { op: 'pong' },
  error: { op: 'error', code: 'forbidden', message: 'no', ref: -1.5 },
};
const OPTIONAL = new Set(['welcome.epochChanged', 'subbed.ref', 'unsubbed.ref', 'puback.ref', 'puback.dup', 'error.ref']);

/** Values of the wrong type for each field (each fails wherever that field is). */
const WRONG: Record<string, unknown[]> = {
  v: [2, '1', true],
  conn: [1, null],
  recipient: [1, null],
  epoch: [1, null],
  resumeFrom: [-1, 1.5, '1', 2 ** 53, null],
  head: [-1, 1.5, '1', null],
  epochChanged: [false, 1, 'true', null],
  id: [-1, 1.5, '7', 2 ** 53, null],
  ch: [1, null, ['c']],
  data: [],
  ts: [-1, 1.5, '1', null],
  msgs: [{}, 'x', null, [1], [{ ...msg, op: 'gap' }], [{ ...msg, id: '7' }], [msg, { ...msg, ts: undefined }]],
  after: [-1, '1', null],
  upTo: [-1, '1', null],
  reason: [1, null],
  pattern: [1, null],
  ref: [true, null, {}, [1], Number.POSITIVE_INFINITY],
  dup: [false, 1, 'true', null],
  exp: ['1', null, true],
  code: [1, null],
  message: [1, null],
};

const without = (o: Record<string, unknown>, k: string) => Object.fromEntries(Object.entries(o).filter(([key]) => key !== k));
const verdict = (o: unknown) => {
  const d = toServerFrame(o);
  return d.ok ? 'ok' : d.error;
};

describe('decodeServerFrame', () => {
  it('takes a valid frame of each op, with and without its optional fields, and returns it as it is', () => {
    expect(Object.keys(FULL).sort()).toEqual([...SERVER_OPS].sort());
    for (const [op, frame] of Object.entries(FULL)) {
      const text = JSON.stringify(frame);
      expect([op, decodeServerFrame(text)]).toEqual([op, { ok: true, frame }]);
      const bare = Object.fromEntries(Object.entries(frame).filter(([k]) => !OPTIONAL.has(`${op}.${k}`)));
      expect([op, decodeServerFrame(JSON.stringify(bare))]).toEqual([op, { ok: true, frame: bare }]);
    }
  });

  it('lets through fields it does not know (a newer server may add some), and any gap reason or error code', () => {
    expect(decodeServerFrame('{"op":"live","id":1,"node":"b"}')).toEqual({ ok: true, frame: { op: 'live', id: 1, node: 'b' } });
    expect(verdict({ ...FULL.gap, reason: 'invalid' })).toBe('ok');
    expect(verdict({ ...FULL.gap, reason: 'some-future-reason' })).toBe('ok');
    expect(verdict({ ...FULL.error, code: 'not_yet_a_code' })).toBe('ok');
    expect(verdict({ op: 'msg', id: 1, ch: 'c', data: null, ts: 0 })).toBe('ok');
    expect(verdict({ op: 'authed', exp: 0.5 })).toBe('ok');
    expect(verdict({ op: 'msgs', msgs: [] })).toBe('ok');
  });

  it('refuses each field missing or of the wrong type, for every op, naming the field', () => {
    let checked = 0;
    for (const [op, frame] of Object.entries(FULL)) {
      for (const field of Object.keys(frame)) {
        if (field === 'op') continue;
        const cases = [
          ...(OPTIONAL.has(`${op}.${field}`) ? [] : [without(frame, field)]),
          ...(WRONG[field] ?? ['?']).map((w) => ({ ...frame, [field]: w })),
        ];
        expect(WRONG[field], `${op}.${field} has wrong values listed`).toBeDefined();
        for (const bad of cases) {
          const d = toServerFrame(bad);
          expect([op, field, bad, d.ok]).toEqual([op, field, bad, false]);
          if (!d.ok) expect([d.error, d.message]).toEqual(['bad_frame', `${op}: bad \`${field}\``]);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(80);
  });

  it('checks every msg inside a msgs frame', () => {
    for (const bad of WRONG.msgs as unknown[]) expect([bad, verdict({ op: 'msgs', msgs: bad })]).toEqual([bad, 'bad_frame']);
    const many = Array.from({ length: 50 }, (_, i) => ({ ...msg, id: i + 1 }));
    expect(verdict({ op: 'msgs', msgs: many })).toBe('ok');
    expect(verdict({ op: 'msgs', msgs: [...many, { ...msg, ch: 5 }] })).toBe('bad_frame');
  });

  it('tells an op from a newer server (unknown_op: ignore it) from a frame it cannot use (not_json, bad_frame)', () => {
    const cases: [string, string][] = [
      ['{"op":"presence","who":["a"]}', 'unknown_op'],
      ['{"op":"constructor"}', 'unknown_op'],
      ['{"op":"__proto__"}', 'unknown_op'],
      ['{"op":"toString"}', 'unknown_op'],
      ['{"op":"msg","id":1,"ch":"c","data":{oops,"ts":1}', 'not_json'],
      ['', 'not_json'],
      ['null', 'bad_frame'],
      ['[{"op":"pong"}]', 'bad_frame'],
      ['"pong"', 'bad_frame'],
      ['{}', 'bad_frame'],
      ['{"op":5}', 'bad_frame'],
      ['{"op":"welcome","v":1}', 'bad_frame'],
    ];
    for (const [text, error] of cases) {
      const d = decodeServerFrame(text);
      expect([text, d.ok ? 'ok' : d.error]).toEqual([text, error]);
    }
    const long = decodeServerFrame(JSON.stringify({ op: 'x'.repeat(5000) }));
    expect(long.ok === false && long.message.length < 60).toBe(true);
  });
});
