// The Lua JSON validator (server/src/redis/lua/includes/json-valid.lua) run inside a real Redis: a table of tricky
// texts, then property tests against the reference "what a browser can take" (valid UTF-8 + JSON.parse), then timings.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, type TestRedis } from '../support/env';

const LUA = readFileSync(new URL('../../server/src/redis/lua/includes/json-valid.lua', import.meta.url), 'utf8');
const SCRIPT = `${LUA}\nlocal ok, why = validJson(ARGV[1])\nif ok then return 1 end\nreturn why\n`;
/** the same, timed inside Redis: { 1|0, microseconds } */
const TIMED = `${LUA}
local t0 = redis.call('TIME')
local ok = validJson(ARGV[1])
local t1 = redis.call('TIME')
return { ok and 1 or 0, (tonumber(t1[1]) - tonumber(t0[1])) * 1000000 + tonumber(t1[2]) - tonumber(t0[2]) }
`;
/** As a FUNCTION library: Redis refuses a library that creates a global variable. */
const LIBRARY = `#!lua name=dps_json_valid_test\n${LUA}
redis.register_function('dps_json_valid', function(keys, args)
  local ok, why = validJson(args[1])
  if ok then return 1 end
  return why
end)
`;

// Fixed by default so a run can be replayed; FC_SEED=<n> to explore other seeds.
const SEED = Number(process.env.FC_SEED ?? 20_240_611);
const RUNS = 400;

let redis: TestRedis;
let sha: string;
let timedSha: string;

beforeAll(async () => {
  redis = await startTestRedis();
  sha = (await redis.client.script('LOAD', SCRIPT)) as string;
  timedSha = (await redis.client.script('LOAD', TIMED)) as string;
});
afterAll(async () => {
  await redis?.cleanup();
});

/** The validator's verdict on exactly these bytes: true or its reason. */
async function verdict(bytes: Buffer): Promise<true | string> {
  const r = await redis.client.evalsha(sha, 0, bytes);
  if (r === 1) return true;
  if (typeof r !== 'string') throw new Error(`unexpected reply ${String(r)}`);
  return r;
}

/**
 * The bytes a naive encoder sends for a JS string: UTF-8, with a lone surrogate encoded as its own 3-byte form
 * (ED A0..BF xx, which is not valid UTF-8). Buffer.from(s) would silently turn it into U+FFFD instead.
 */
function wtf8(s: string): Buffer {
  const out: number[] = [];
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  }
  return Buffer.from(out);
}

const parses = (s: string): boolean => {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
};

/** A JS string a client can take: well-formed UTF-16 (so valid UTF-8 on the wire) and exactly one JSON text. */
function isValidForClient(s: string): boolean {
  return Buffer.from(s, 'utf8').toString('utf8') === s && parses(s);
}

// ignoreBOM: a BOM is kept (and so refused by JSON.parse) instead of silently dropped: inside a frame it is not at the start.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The same for raw bytes: what a browser's strict UTF-8 decoding of a text frame, then JSON.parse, accept. */
function isValidBytesForClient(b: Uint8Array): boolean {
  let s: string;
  try {
    s = strictUtf8.decode(b);
  } catch {
    return false;
  }
  return parses(s);
}

const nest = (n: number, open: string, close: string, inner = '1') => `${open.repeat(n)}${inner}${close.repeat(n)}`;
const quoted = (...bytes: number[]) => Buffer.from([0x22, ...bytes, 0x22]);
const times = (n: number, bytes: number[]) => Array.from({ length: n }, () => bytes).flat();

/** 1 MiB: an array of 10k objects with strings, numbers and literals (about 990 KB), then trailing spaces. */
function bigDocument(): string {
  const items: unknown[] = [];
  for (let i = 0; i < 10_000; i++) {
    items.push({ id: i, name: `user-${i}`, score: i * 1.25 - 3e-7, tags: ['alpha', 'beta'], ok: i % 2 === 0, text: 'lorem' });
  }
  const s = JSON.stringify(items);
  return s + ' '.repeat(Math.max(0, 1024 * 1024 - s.length));
}

/** Exactly 1 MiB: one JSON string of non-ASCII text (2-, 3- and 4-byte UTF-8). */
function bigUnicodeString(): Buffer {
  const unit = Buffer.from('Grüße, 東京の天気 😀 é€ Ωμέγα 𝄞 ', 'utf8');
  const body = Buffer.alloc(1024 * 1024 - 2, 0x20);
  for (let at = 0; at + unit.length <= body.length; at += unit.length) unit.copy(body, at);
  return Buffer.concat([Buffer.from('"'), body, Buffer.from('"')]);
}

type Case = [label: string, input: string | Buffer, ok: boolean, opts?: { limit?: boolean; reason?: RegExp }];

const BIG = bigDocument();

const CASES: Case[] = [
  // values
  ['integer', '1', true],
  ['zero', '0', true],
  ['minus zero', '-0', true],
  ['full number', '-12.5e+3', true],
  ['number with all parts', '-0.0e-0', true],
  ['capital E', '1E5', true],
  ['huge exponent', '1e400', true],
  ['huge negative exponent', '-1e-400', true],
  ['long integer', '123456789012345678901234567890', true],
  ['true', 'true', true],
  ['false', 'false', true],
  ['null', 'null', true],
  ['string', '"abc"', true],
  ['empty string', '""', true],
  ['all escapes', '"\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uABCD"', true],
  ['escaped NUL', '"\\u0000"', true],
  ['escaped lone high surrogate', '"\\ud800"', true],
  ['escaped lone low surrogate', '"\\uDC00x"', true],
  ['escaped surrogate pair', '"\\ud83d\\ude00"', true],
  ['raw DEL in string', '"a\x7fb"', true],
  ['empty object', '{}', true],
  ['empty array', '[]', true],
  ['spaced empty containers', '{ \n}', true],
  ['surrounding whitespace', ' \t\n\r[ 1 , { "a" : [ ] } ]\r\n\t ', true],
  ['duplicate keys', '{"a":1,"a":2}', true],
  ['nested mix', '{"a":[1,{"b":[null,true,false,"x",-1.5e3]}],"c":{}}', true],
  ['511 levels', nest(511, '[', ']'), true],
  ['512 levels', nest(512, '[', ']', ''), true],
  ['512 object levels', nest(512, '{"a":', '}'), true],
  ['1 MiB document', BIG, true],
  // numbers
  ['leading zero', '01', false],
  ['negative leading zero', '-01', false],
  ['trailing dot', '1.', false],
  ['leading dot', '.5', false],
  ['plus sign', '+1', false],
  ['NaN', 'NaN', false],
  ['Infinity', 'Infinity', false],
  ['-Infinity', '-Infinity', false],
  ['hex', '0x10', false],
  ['exponent without digits', '1e', false],
  ['exponent sign without digits', '1e+', false],
  ['dot before exponent', '1.e5', false],
  ['lone minus', '-', false],
  ['double minus', '--1', false],
  ['minus space', '- 1', false],
  // structure
  ['empty', '', false, { reason: /no JSON value/ }],
  ['one space', ' ', false],
  ['three spaces', '   ', false],
  ['only whitespace', ' \t\r\n ', false],
  ['two values', '1 2', false, { reason: /trailing data at byte 2/ }],
  ['value after object', '{} x', false],
  ['two objects', '{}{}', false],
  ['comma-separated values', '1,2', false],
  ['comma after top-level value', '{},', false],
  ['comma before top-level value', ',1', false],
  ['trailing comma in object', '{"a":1,}', false],
  ['trailing comma in array', '[1,]', false],
  ['leading comma', '[,1]', false],
  ['double comma', '[1,,2]', false],
  ['missing colon', '{"a" 1}', false, { reason: /expected : at byte 5/ }],
  ['missing comma', '[1 2]', false],
  ['missing comma in object', '{"a":1 "b":2}', false],
  ['unquoted key', '{a:1}', false],
  ['number key', '{1:1}', false],
  ['single quotes', "'a'", false],
  ['mismatched close', '[1}', false],
  ['empty array closed by }', '[ }', false],
  ['empty object closed by ]', '{]', false],
  ['mismatched close 2', '{"a":1]', false],
  ['extra close', '[1]]', false],
  ['unclosed array', '[1', false],
  ['unclosed object', '{"a":1', false],
  ['key only', '{"a"}', false],
  ['colon without value', '{"a":}', false],
  ['bare key-value', '"a":1', false],
  ['lone brackets', ']', false],
  ['truncated true', 'tru', false],
  ['capital True', 'True', false],
  ['truncated null', 'nul', false],
  ['truncated false', 'fals', false],
  ['falsy', 'falsy', false],
  ['nullx', '[nullx]', false],
  ['truex', 'truex', false],
  ['undefined', 'undefined', false],
  ['comment', '/* */ 1', false],
  ['BOM', '\ufeff1', false],
  ['NBSP as whitespace', '\u00a01', false],
  ['form feed as whitespace', '\f1', false],
  ['vertical tab as whitespace', '1\v', false],
  ['NUL after value', Buffer.from('1\0'), false],
  // strings
  ['unterminated string', '"abc', false],
  ['unterminated after escape', '"abc\\', false],
  ['bad escape', '"\\x"', false, { reason: /bad escape at byte 1/ }],
  ['vertical tab escape', '"\\v"', false],
  ['single quote escape', '"\\\'"', false],
  ['NUL escape', '"\\0"', false],
  ['escaped space', '"\\ "', false],
  ['unicode escape with 3 hex digits', '"\\u123x"', false],
  ['capital U escape', '"\\U0041"', false],
  ['short unicode escape', '"\\u12"', false],
  ['non-hex unicode escape', '"\\u12G4"', false],
  ['escaped quote only', '"\\"', false],
  ['raw tab in string', '"a\tb"', false, { reason: /control character in string at byte 2/ }],
  ['raw newline in string', '"a\nb"', false],
  ['raw NUL in string', quoted(0x61, 0x00), false],
  ['raw 0x1f in string', quoted(0x1f), false],
  ['raw control character in key', '{"a\u0001":1}', false],
  // UTF-8
  ['2-byte UTF-8', quoted(0xc2, 0x80, 0xdf, 0xbf), true],
  ['3-byte UTF-8', quoted(0xe0, 0xa0, 0x80, 0xed, 0x9f, 0xbf, 0xee, 0x80, 0x80, 0xef, 0xbf, 0xbf), true],
  ['4-byte UTF-8', quoted(0xf0, 0x90, 0x80, 0x80, 0xf4, 0x8f, 0xbf, 0xbf), true],
  ['text in many scripts', '{"é":"Grüße 東京 😀 𝄞 Ωμέγα"}', true],
  ['overlong 2-byte NUL', quoted(0xc0, 0x80), false, { reason: /invalid UTF-8 at byte 1/ }],
  ['overlong C1', quoted(0xc1, 0xbf), false],
  ['overlong 3-byte', quoted(0xe0, 0x80, 0x80), false],
  ['overlong 4-byte', quoted(0xf0, 0x8f, 0xbf, 0xbf), false],
  ['UTF-8 encoded high surrogate', quoted(0xed, 0xa0, 0x80), false],
  ['UTF-8 encoded low surrogate', quoted(0xed, 0xbf, 0xbf), false],
  ['UTF-8 encoded surrogate pair', quoted(0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80), false],
  ['above U+10FFFF', quoted(0xf4, 0x90, 0x80, 0x80), false],
  ['F5 lead byte', quoted(0xf5, 0x80, 0x80, 0x80), false],
  ['FF byte', quoted(0xff), false],
  ['lone continuation byte', quoted(0x80), false],
  ['continuation after a valid sequence', quoted(0xc3, 0xa9, 0xbf), false],
  ['truncated 3-byte at the quote', quoted(0xe2, 0x82), false],
  ['truncated 3-byte before ASCII', quoted(0xe2, 0x82, 0x61), false],
  ['truncated 4-byte at end of input', Buffer.from([0x22, 0xf0, 0x9f, 0x98]), false, { reason: /invalid UTF-8 at byte 1/ }],
  ['truncated 2-byte at end of input', Buffer.from([0x22, 0x61, 0xc3]), false, { reason: /invalid UTF-8 at byte 2/ }],
  ['truncated 2-byte then quote', quoted(0xc3), false],
  // runs of four or more 3-byte sequences (the validator checks common ones four at a time)
  ['run of 3-byte sequences', quoted(...Buffer.from('中文字符测试東京の天気', 'utf8')), true],
  ['run of overlong 3-byte', quoted(...times(6, [0xe0, 0x80, 0x80])), false],
  ['surrogate after a run', quoted(...Buffer.from('中文字符', 'utf8'), 0xed, 0xa0, 0x80, ...Buffer.from('中文字符', 'utf8')), false],
  ['surrogate inside a run', quoted(...Buffer.from('中文字', 'utf8'), 0xed, 0xa0, 0x80, ...Buffer.from('中文字', 'utf8')), false],
  ['overlong inside a run', quoted(...Buffer.from('中文', 'utf8'), 0xe0, 0x9f, 0xbf, ...Buffer.from('中文字', 'utf8')), false],
  ['run of UTF-8 surrogates', quoted(...times(6, [0xed, 0xb0, 0x80])), false],
  ['run of 2-byte sequences', quoted(...Buffer.from('Ωμέγαλφαβητο', 'utf8')), true],
  ['overlong after a 2-byte run', quoted(...Buffer.from('Ωμέγα', 'utf8'), 0xc1, 0x81, ...Buffer.from('Ωμέγα', 'utf8')), false],
  ['non-ASCII outside a string', Buffer.from([0x5b, 0xc3, 0xa9, 0x5d]), false],
  ['lone continuation after the value', Buffer.from([0x31, 0x80]), false],
  ['invalid byte at the end of 1 MiB', Buffer.concat([Buffer.from(BIG.slice(0, -2)), quoted(0x80)]), false],
  // limits that are stricter than JSON.parse on purpose
  ['513 levels', nest(513, '[', ']', ''), false, { limit: true, reason: /nesting deeper than 512 at byte 512/ }],
  ['600 levels', nest(600, '[', ']'), false, { limit: true, reason: /nesting deeper than 512/ }],
  ['600 object levels', nest(600, '{"a":', '}'), false, { limit: true, reason: /nesting deeper than 512/ }],
  ['100k levels', nest(100_000, '[', ']'), false, { limit: true, reason: /nesting deeper than 512/ }],
];

describe('validJson (Lua, in Redis)', () => {
  it.each(CASES)('%s', async (_label, input, ok, opts) => {
    const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
    // the expectation itself agrees with the reference, except for the deliberate depth limit
    if (!opts?.limit) expect(isValidBytesForClient(bytes)).toBe(ok);
    const v = await verdict(bytes);
    if (ok) expect(v).toBe(true);
    else {
      expect(v).not.toBe(true);
      expect(v).toMatch(opts?.reason ?? /at byte \d+|no JSON value/);
    }
  });

  it('loads as a FUNCTION library (so it creates no global) and answers the same there', async () => {
    await redis.client.function('LOAD', 'REPLACE', LIBRARY);
    expect(await redis.client.fcall('dps_json_valid', 0, Buffer.from('{"a":[1,"é"]}'))).toBe(1);
    expect(await redis.client.fcall('dps_json_valid', 0, Buffer.from('[1,]'))).toMatch(/not JSON at byte 3/);
    expect(await redis.client.fcall('dps_json_valid', 0, quoted(0xed, 0xa0, 0x80))).toMatch(/invalid UTF-8/);
  });

  it('wtf8 is UTF-8 for well-formed strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => wtf8(s).equals(Buffer.from(s, 'utf8'))),
      { seed: SEED, numRuns: RUNS },
    );
  });

  // characters that matter to the grammar, escapes, whitespace (allowed and not), controls, multi-byte, lone surrogates
  const special = fc.constantFrom(
    ...'{}[],:"\\/ -+.eE0123456789tfnulrsxabu'.split(''),
    '\t',
    '\n',
    '\r',
    '\f',
    '\v',
    '\0',
    '\u001f',
    '\u007f',
    '\u00a0',
    '\ufeff',
    'é',
    '€',
    '😀',
    '\ud800',
    '\udfff',
    'true',
    'null',
    '\\u',
    '\\ud800',
    '""',
  );
  const anyUnit = fc.oneof(
    special,
    fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
    fc.integer({ min: 0x10000, max: 0x10ffff }).map((c) => String.fromCodePoint(c)),
  );
  const mutation = fc.record({ op: fc.constantFrom('insert', 'delete', 'replace'), at: fc.nat(), ch: anyUnit });
  const mutatedJson = fc
    .tuple(fc.oneof(fc.json(), fc.json({ stringUnit: 'binary' })), fc.array(mutation, { minLength: 1, maxLength: 3 }))
    .map(([text, ops]) => {
      for (const { op, at, ch } of ops) {
        const i = text.length === 0 ? 0 : at % (text.length + (op === 'insert' ? 1 : 0));
        if (op === 'insert') text = text.slice(0, i) + ch + text.slice(i);
        else if (op === 'delete') text = text.slice(0, i) + text.slice(i + 1);
        else text = text.slice(0, i) + ch + text.slice(i + 1);
      }
      return text;
    });
  const tokens = fc
    .array(fc.constantFrom(...'{|}|[|]|,|:| |\n|"a"|"\\u00e9"|"é"|"|1|-|0|.|e|5|true|null'.split('|')), { maxLength: 16 })
    .map((t) => t.join(''));
  // escapes, good and bad
  const escapes = fc
    .tuple(fc.constantFrom(...'"\\/bfnrtuuuvaxU0\' '.split('')), fc.stringMatching(/^[0-9a-fA-F]{0,4}[xG"]?[0-9a-f]{0,2}$/))
    .map(([e, rest]) => `"\\${e}${rest}"`);
  // token-level edits of small valid JSON: near misses such as [1,], 1,2, [}, {"a"}, 1.
  const TOKEN = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null|[{}[\],:]/g;
  const tokenEdit = fc.record({
    op: fc.constantFrom('delete', 'insert', 'replace', 'duplicate'),
    at: fc.nat(),
    tok: fc.constantFrom(...'{|}|[|]|,|:|,|]|}|,1|[}|{]|"k"|"k":|1|-0|2.5e-3|null|fals|01|1.|-|.5|1e|"|\\'.split('|')),
  });
  // small valid JSON texts (few elements, short scalars), so that an edit often lands on a spot that matters
  const smallJson = fc.letrec<{ value: string; array: string; object: string }>((tie) => ({
    value: fc.oneof(
      { maxDepth: 3, depthIdentifier: 'smallJson' },
      fc.constantFrom('0', '1', '-1.5', '2e-3', '"a"', '""', '"\\u00e9"', 'true', 'false', 'null'),
      tie('array'),
      tie('object'),
    ),
    array: fc.array(tie('value'), { maxLength: 3 }).map((xs) => `[${xs.join(',')}]`),
    object: fc
      .array(fc.tuple(fc.constantFrom('"a"', '"b"', '""'), tie('value')), { maxLength: 3 })
      .map((kvs) => `{${kvs.map(([k, v]) => `${k}:${v}`).join(',')}}`),
  })).value;
  const tokenMutatedJson = fc
    .tuple(smallJson, fc.array(tokenEdit, { minLength: 1, maxLength: 2 }), fc.constantFrom('', ' ', '\n'))
    .map(([text, edits, sep]) => {
      const toks = text.match(TOKEN) ?? [];
      for (const { op, at, tok } of edits) {
        const i = at % (toks.length + 1);
        if (op === 'insert') toks.splice(i, 0, tok);
        else if (op === 'delete') toks.splice(i, 1);
        else if (op === 'replace') toks.splice(i, 1, tok);
        else if (toks[i] !== undefined) toks.splice(i, 0, toks[i]);
      }
      return toks.join(sep);
    });
  const texts = fc.oneof(
    fc.json(),
    fc.json({ stringUnit: 'binary' }),
    fc.string(),
    fc.string({ unit: anyUnit }),
    fc.string({ unit: anyUnit }).map((s) => `"${s}"`),
    fc.stringMatching(/^[-+]?(0|[1-9][0-9]*|0[0-9]+)?(\.[0-9]*)?([eE][-+]?[0-9]*)?$/),
    fc.stringMatching(/^[-+.0-9eExIfinityNa ]{1,8}$/),
    { weight: 2, arbitrary: escapes },
    { weight: 3, arbitrary: tokens },
    { weight: 3, arbitrary: mutatedJson },
  );

  it('agrees with isValidForClient (UTF-8 + JSON.parse) on random and mutated texts', async () => {
    let valid = 0;
    await fc.assert(
      fc.asyncProperty(texts, async (s) => {
        const expected = isValidForClient(s);
        if (expected) valid++;
        const v = await verdict(wtf8(s));
        expect({ s, ok: v === true, v }).toMatchObject({ s, ok: expected });
      }),
      { seed: SEED, numRuns: RUNS },
    );
    // both sides of the property are exercised
    expect(valid).toBeGreaterThan(RUNS / 10);
    expect(valid).toBeLessThan(RUNS - RUNS / 10);
  });

  it('agrees with isValidForClient on token-level edits of valid JSON', async () => {
    let valid = 0;
    await fc.assert(
      fc.asyncProperty(tokenMutatedJson, async (s) => {
        const expected = isValidForClient(s);
        if (expected) valid++;
        const v = await verdict(wtf8(s));
        expect({ s, ok: v === true, v }).toMatchObject({ s, ok: expected });
      }),
      { seed: SEED, numRuns: RUNS },
    );
    expect(valid).toBeGreaterThan(RUNS / 20);
    expect(valid).toBeLessThan(RUNS - RUNS / 20);
  });

  const interestingByte = fc.oneof(
    fc.integer({ min: 0, max: 255 }),
    fc.constantFrom(0x22, 0x5c, 0x61, 0x00, 0x1f, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1),
    fc.constantFrom(0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xfe, 0xff),
  );
  // UTF-8 sequences, mostly well-formed (so that runs form) and some not
  const goodSequence = fc.constantFrom(
    [0x61],
    [0xc2, 0x80],
    [0xc3, 0xa9],
    [0xdf, 0xbf],
    [0xe0, 0xa0, 0x80],
    [0xe4, 0xb8, 0xad],
    [0xed, 0x9f, 0xbf],
    [0xee, 0x80, 0x80],
    [0xef, 0xbf, 0xbf],
    [0xf0, 0x90, 0x80, 0x80],
    [0xf0, 0x9f, 0x98, 0x80],
    [0xf3, 0xbf, 0xbf, 0xbf],
    [0xf4, 0x8f, 0xbf, 0xbf],
  );
  const badSequence = fc.constantFrom(
    [0x80],
    [0xbf],
    [0xc0, 0x80],
    [0xc1, 0xbf],
    [0xc3],
    [0xe0, 0x80, 0x80],
    [0xe0, 0x9f, 0xbf],
    [0xe4, 0xb8],
  );
  const moreBad = fc.constantFrom(
    [0xed, 0xa0, 0x80],
    [0xed, 0xbf, 0xbf],
    [0xf0, 0x8f, 0xbf, 0xbf],
    [0xf4, 0x90, 0x80, 0x80],
    [0xf5, 0x80, 0x80, 0x80],
    [0xff],
  );
  const sequences = fc
    .array(fc.oneof({ weight: 12, arbitrary: goodSequence }, { weight: 1, arbitrary: badSequence }, { weight: 1, arbitrary: moreBad }), {
      maxLength: 16,
    })
    .map((seqs) => quoted(...seqs.flat()));
  // only 3-byte sequences, so that blocks of four form, with now and then an overlong form or a surrogate among them
  const threeByteRuns = fc
    .array(
      fc.oneof(
        {
          weight: 10,
          arbitrary: fc.constantFrom([0xe4, 0xb8, 0xad], [0xef, 0xbf, 0xbf], [0xee, 0x80, 0x80], [0xe0, 0xa0, 0x80], [0xed, 0x9f, 0xbf]),
        },
        {
          weight: 1,
          arbitrary: fc.constantFrom([0xe0, 0x80, 0x80], [0xe0, 0x9f, 0xbf], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xe4, 0xb8, 0x2d]),
        },
      ),
      { maxLength: 12 },
    )
    .map((seqs) => quoted(...seqs.flat()));
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b)),
    sequences,
    threeByteRuns,
    // inside a string, where UTF-8 is decoded
    fc.array(interestingByte, { maxLength: 12 }).map((b) => quoted(...b)),
    // a valid JSON text with some bytes overwritten
    fc
      .tuple(fc.json({ stringUnit: 'binary' }), fc.array(fc.tuple(fc.nat(), interestingByte), { minLength: 1, maxLength: 3 }))
      .map(([text, edits]) => {
        const b = Buffer.from(text, 'utf8');
        for (const [at, byte] of edits) b[at % b.length] = byte;
        return b;
      }),
  );

  it('agrees with strict UTF-8 decoding + JSON.parse on random bytes', async () => {
    let valid = 0;
    await fc.assert(
      fc.asyncProperty(bytes, async (b) => {
        const expected = isValidBytesForClient(b);
        if (expected) valid++;
        const v = await verdict(b);
        expect({ hex: b.toString('hex'), ok: v === true, v }).toMatchObject({ hex: b.toString('hex'), ok: expected });
      }),
      { seed: SEED, numRuns: RUNS },
    );
    expect(valid).toBeGreaterThan(0);
  });

  it('validates 1 MiB documents in Redis (timings printed, not asserted)', async () => {
    const docs: [string, Buffer][] = [
      ['1 MiB array of 10k objects', Buffer.from(BIG, 'utf8')],
      ['1 MiB string of non-ASCII text', bigUnicodeString()],
    ];
    for (const [label, doc] of docs) {
      expect(isValidBytesForClient(doc)).toBe(true);
      const inLua: number[] = [];
      const roundTrip: number[] = [];
      for (let k = 0; k < 5; k++) {
        const t0 = performance.now();
        const [ok, us] = (await redis.client.evalsha(timedSha, 0, doc)) as [number, number];
        roundTrip.push(performance.now() - t0);
        expect(ok).toBe(1);
        inLua.push(us / 1000);
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      console.log(
        `validJson ${label} (${doc.length} bytes): in Lua median ${median(inLua).toFixed(1)} ms (min ${Math.min(...inLua).toFixed(1)}),` +
          ` EVALSHA round trip median ${median(roundTrip).toFixed(1)} ms`,
      );
    }
  });
});
