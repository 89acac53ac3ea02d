// The Lua scripts as loaded: file names, headers that match what each script uses, includes, a typed caller per script, named codes.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { refusalOf, ScriptCode } from './codes';
import { Scripts } from './commands';
import { keysFor } from './keys';
import { commandOf, functionLibrary, LUA_DIR, scriptFiles, scriptSource } from './scripts';

const read = (file: string) => readFileSync(join(LUA_DIR, file), 'utf8');
const INCLUDES = join(LUA_DIR, 'includes');

/** A script's opening `--[[ … ]]` comment, and the code after it. */
function split(lua: string): { header: string; body: string } {
  const end = lua.indexOf(']]');
  expect(lua.startsWith('--[[')).toBe(true);
  return { header: lua.slice(0, end), body: lua.slice(end + 2) };
}

/** What stands between the brackets of each `KEYS[…]` / `ARGV[…]`, without spaces or `*` (`4 * i - 1` and `4i - 1` alike). */
function indices(text: string, table: 'KEYS' | 'ARGV', lineStart = false): string[] {
  const re = lineStart ? new RegExp(`^\\s*${table}\\[([^\\]]+)\\]`, 'gm') : new RegExp(`${table}\\[([^\\]]+)\\]`, 'g');
  return [...text.matchAll(re)].map((m) => (m[1] as string).replace(/[\s*]/g, ''));
}

const numeric = (list: string[]) => [...new Set(list.filter((i) => /^\d+$/.test(i)).map(Number))].sort((a, b) => a - b);
const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('script files', () => {
  const scripts = scriptFiles();

  it('are every .lua file in lua/, each named <command>-<numKeys|n>.lua', () => {
    const all = readdirSync(LUA_DIR).filter((f) => f.endsWith('.lua'));
    expect(all.length).toBeGreaterThan(0);
    expect(scripts.map((s) => s.file)).toEqual(all);
  });

  it.each(scriptFiles())('$file lists exactly its keys in its header, one KEYS[i] line each', ({ file, numKeys }) => {
    const { header, body } = split(read(file));
    const listed = indices(header, 'KEYS', true);
    if (numKeys === 'n') {
      // fixed keys first, then the batch's: every key the code names is listed
      const mentioned = new Set(indices(header, 'KEYS'));
      for (const used of indices(body, 'KEYS')) expect(mentioned, `KEYS[${used}]`).toContain(used);
      expect(numeric(listed)).toEqual(upTo(numeric(listed).length));
    } else {
      expect(listed).toEqual(upTo(numKeys).map(String));
      for (const used of numeric(indices(body, 'KEYS'))) expect(used).toBeLessThanOrEqual(numKeys);
    }
  });

  it.each(scriptFiles())('$file lists every ARGV it uses in its header, and no other', ({ file }) => {
    const { header, body } = split(read(file));
    const mentioned = new Set(indices(header, 'ARGV'));
    const used = indices(body, 'ARGV');
    for (const u of used) expect(mentioned, `ARGV[${u}]`).toContain(u);
    expect(numeric(indices(header, 'ARGV', true))).toEqual(numeric(used));
  });

  it('include only blocks that exist, and every include is used', () => {
    const available = readdirSync(INCLUDES).map((f) => f.replace(/\.lua$/, ''));
    const texts = [
      ...scripts.map((s) => read(s.file)),
      ...available.map((n) => read(join('includes', `${n}.lua`))),
      readFileSync(join(LUA_DIR, '..', 'functions', 'dps.lua'), 'utf8'),
    ];
    const named = texts.flatMap((t) => [...t.matchAll(/^--@include (.*)$/gm)].map((m) => m[1] as string));
    for (const n of named) expect(available, `--@include ${n}`).toContain(n);
    expect(new Set(named)).toEqual(new Set(available));
  });

  it('flatten with no --@include left, each block once', () => {
    for (const text of [...scripts.map((s) => scriptSource(s.file)), functionLibrary()]) {
      expect(text).not.toMatch(/^--@include/m);
      for (const fn of text.matchAll(/^local function (\w+)/gm))
        expect(text.split(`local function ${fn[1]}(`).length, `${fn[1]} defined once`).toBe(2);
    }
    expect(functionLibrary().startsWith('#!lua name=dps\n')).toBe(true);
  });

  it('return no negative code that ScriptCode does not name', () => {
    const named = new Set<number>(Object.values(ScriptCode));
    for (const { file } of scripts)
      for (const m of split(read(file)).body.matchAll(/(?:return \{ |out\[i\] = )(-\d+)/g)) expect(named, file).toContain(Number(m[1]));
  });
});

/** A connection that records what each script command was called with, and answers as the scripts would. */
function fakeRedis(replies: Record<string, unknown>) {
  const defined = new Map<string, number | undefined>();
  const calls: { command: string; args: (string | number)[] }[] = [];
  const fake: Record<string, unknown> = {
    defineCommand(name: string, def: { numberOfKeys?: number }) {
      defined.set(name, def.numberOfKeys);
      for (const command of [name, `${name}Buffer`])
        fake[command] = async (...args: (string | number)[]) => {
          calls.push({ command: name, args });
          if (!(name in replies)) throw new Error(`no reply for ${name}`);
          return replies[name];
        };
    },
  };
  return { redis: fake as unknown as Redis, defined, calls };
}

const REPLIES = {
  dpsPublishmany: ['e1', 7, 1, 3],
  dpsHello: ['e1', 9, 4, 0, 4],
  dpsAckmany: [5, ScriptCode.epochGone, ScriptCode.forgotten],
  dpsPlace: [6, 1],
  dpsForget: 2,
  dpsFloors: ['changed', '["a"]', '3', '["b"]', null],
  dpsMigrate: 1,
  /** called as dpsReadBuffer */
  dpsRead: [2, Buffer.from('{"op":"msg"}'), Buffer.from('8')],
  dpsTrim: [1, 2],
  dpsRecover: ['e1', 'same', 'run', 9],
  dpsClock: ['1700000000', '250000'],
  dpsPubsubmode: 'sharded',
  dpsDscreate: ['created', 5, '0', 'text/plain'],
  dpsDsappend: ['gap', 5, '0', 2, 4],
  /** called as dpsDsreadBuffer */
  dpsDsread: ['ok', 'text/plain', 8, '1', '3', '', '', '', 0, Buffer.from('0000000000000000hello'), Buffer.from('0000000000000005abc')].map(
    (v) => (typeof v === 'string' ? Buffer.from(v) : v),
  ),
  dpsDsdelete: 'gone',
};

/** One call of each caller, by the script's command name, with what it should answer. */
const CALLS: Record<string, [(s: Scripts) => Promise<unknown>, unknown]> = {
  publishmany: [
    (s) =>
      s.publishmany({
        messages: [
          { ch: 'a', data: '1', key: undefined },
          { ch: 'b', data: '2', key: 'k' },
        ],
        deadline: 0,
        maxLen: 10,
        idemWindowSec: 60,
      }),
    { epoch: 'e1', first: 7, repeated: new Map([[1, 3]]) },
  ],
  hello: [
    (s) => s.hello({ recipient: 'r', setKey: '["a"]', from: 'earliest' }),
    { epoch: 'e1', head: 9, resumeFrom: 4, epochChanged: false, acked: 4 },
  ],
  ackmany: [
    (s) => s.ackmany(['x', 'y', 'z'].map((recipient) => ({ recipient, setKey: '["a"]', id: 5, epoch: 'e1' }))),
    [{ status: 'stored', position: 5 }, { status: 'epoch-gone' }, { status: 'forgotten' }],
  ],
  place: [
    (s) => s.place({ recipient: 'r', setKey: '["a"]', position: 3, create: false }),
    { status: 'placed', position: 6, existed: true },
  ],
  forget: [(s) => s.forget({ recipient: 'r' }), 'recipient'],
  floors: [
    (s) => s.floors({ reader: 'j' }),
    {
      all: false,
      floors: new Map([
        ['["a"]', 3],
        ['["b"]', null],
      ]),
    },
  ],
  migrate: [(s) => s.migrate({ recipient: 'r', patterns: '["a"]', setKey: '["a"]' }), true],
  read: [(s) => s.read({ ch: 'a', after: 0, upTo: 9, limit: 10 }), { watermark: 2, ids: [8], payloads: [Buffer.from('{"op":"msg"}')] }],
  trim: [(s) => s.trim({ ch: 'a', ackFloor: -1, ageCut: -1, maxLen: 10 }), { acked: 1, retained: 2 }],
  recover: [(s) => s.recover({ decision: 'check' }), { epoch: 'e1', outcome: 'same', runId: 'run', head: 9 }],
  clock: [(s) => s.clock(), 1_700_000_000_250],
  pubsubmode: [(s) => s.pubsubMode('init', 'sharded'), 'sharded'],
  dscreate: [
    (s) => s.dscreate({ path: 'a', config: { ct: 'text/plain', closed: false }, entries: [] }),
    { status: 'created', tail: 5, closed: false, ct: 'text/plain' },
  ],
  dsappend: [
    (s) => s.dsappend({ path: 'a', ct: 'text/plain', close: false, producer: { id: 'p', epoch: 0, seq: 4 }, entries: [], maxLen: 10 }),
    { status: 'gap', tail: 5, closed: false, a: 2, b: 4 },
  ],
  dsread: [
    (s) => s.dsread({ path: 'a', from: 0, maxBytes: 100, touch: true }),
    {
      status: 'ok',
      meta: { ct: 'text/plain', tail: 8, closed: true, id: '3' },
      from: 0,
      entries: [
        { start: 0, data: Buffer.from('hello') },
        { start: 5, data: Buffer.from('abc') },
      ],
    },
  ],
  dsdelete: [(s) => s.dsdelete({ path: 'a' }), 'gone'],
};

describe('typed callers', () => {
  const keys = keysFor('t');
  const prefix = 'dps:{t}:';

  it.each(scriptFiles())('$file has one, which passes its keys and arguments as its header lists them', async ({ file, name, numKeys }) => {
    const { redis, defined, calls } = fakeRedis(REPLIES);
    const scripts = new Scripts(redis, keys);
    expect(defined.get(commandOf(name))).toBe(numKeys === 'n' ? undefined : numKeys);
    const call = CALLS[name];
    expect(call, `a caller for ${name}`).toBeDefined();
    const [invoke, expected] = call as [(s: Scripts) => Promise<unknown>, unknown];
    expect(await invoke(scripts)).toEqual(expected);
    expect(calls.map((c) => c.command)).toEqual([commandOf(name)]);
    const args = (calls[0] as { args: (string | number)[] }).args;
    const count = numKeys === 'n' ? Number(args.shift()) : numKeys;
    for (const key of args.slice(0, count)) expect(String(key).startsWith(prefix), `${key} is a key of the namespace`).toBe(true);
    if (numKeys !== 'n') expect(args.length - count).toBe(numeric(indices(split(read(file)).header, 'ARGV', true)).length);
  });

  it('map a code no caller expects to an error, not an outcome', async () => {
    const { redis } = fakeRedis({ ...REPLIES, dpsPlace: [ScriptCode.epochGone, 0], dpsAckmany: [-3] });
    const scripts = new Scripts(redis, keys);
    await expect(scripts.place({ recipient: 'r', setKey: '[]', position: 0, create: false })).rejects.toThrow(/place returned -1/);
    await expect(scripts.ackmany([{ recipient: 'r', setKey: '[]', id: 1, epoch: 'e' }])).rejects.toThrow(/ackmany returned -3/);
    expect(refusalOf('x', ScriptCode.forgotten, ['forgotten'])).toEqual({ status: 'forgotten' });
  });
});
