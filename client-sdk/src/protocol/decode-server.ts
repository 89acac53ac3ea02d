// The guard for frames from the server: what a v1 client may take as a ServerFrame, from a table kept small for the SDK's bundle.
import { type Decoded, type DecodeError, isId } from './decode';
import type { ServerFrame } from './types';

/**
 * Each op's fields as `name:type`; an upper-case type marks an optional field. 1: the protocol version,
 * i: an id (a safe integer ≥ 0), n: a finite number, s: a string, r: a ref (a string or a finite number),
 * t: `true`, j: present (any JSON value), m: an array of `msg` frames. Fields not listed are let through: a newer
 * server may add some. `gap.reason` and `error.code` are any string for the same reason: a gap whose reason an
 * older client does not know is still a gap, and an error with a new code still an error.
 */
const FIELDS: Record<ServerFrame['op'], string> = {
  welcome: 'v:1 conn:s recipient:s epoch:s resumeFrom:i head:i epochChanged:T',
  msg: 'id:i ch:s data:j ts:i',
  msgs: 'msgs:m',
  live: 'id:i',
  gap: 'ch:s after:i upTo:i reason:s',
  subbed: 'pattern:s ref:R',
  unsubbed: 'pattern:s ref:R',
  puback: 'ref:R id:i dup:T',
  authed: 'exp:n',
  pong: '',
  error: 'code:s message:s ref:R',
};

const TYPES: Record<string, (v: unknown) => boolean> = {
  1: (v) => v === 1,
  i: isId,
  n: Number.isFinite,
  s: (v) => typeof v === 'string',
  r: (v) => typeof v === 'string' || Number.isFinite(v),
  t: (v) => v === true,
  j: (v) => v !== undefined,
  m: (v) => Array.isArray(v) && v.every((m) => badField(m, 'msg') === ''),
};

/** FIELDS split once per op, on first use: [name, type, name, type, …] */
const split: Record<string, string[]> = {};

type MaybeFrame = { op?: unknown; [field: string]: unknown } | null | undefined;

/** The first field of `v` that is missing or of the wrong type for `op` ('' when none; `op` when `v` is no such frame). */
function badField(v: unknown, op: string): string {
  // JSON.parse gives arrays and primitives no `op`: one test covers "not an object" too
  if ((v as MaybeFrame)?.op !== op) return op;
  const f = (split[op] ??= FIELDS[op as ServerFrame['op']].split(/[ :]/));
  for (let i = 0; i + 1 < f.length; i += 2) {
    const t = f[i + 1] as string;
    const x = (v as Record<string, unknown>)[f[i] as string];
    if (!(t === t.toLowerCase() ? TYPES[t]?.(x) : x === undefined || TYPES[t.toLowerCase()]?.(x))) return f[i] as string;
  }
  return '';
}

const fail = (error: DecodeError, message: string): Decoded<never> => ({ ok: false, error, message });

/**
 * A parsed value as a server frame of v1, returned as it is (fields the table does not list stay), or why not:
 * `unknown_op`, an op this version does not know, from a newer server (a client ignores it, as the server keeps a
 * connection that sends a client op it does not know); `bad_frame`, a frame it cannot use. No messages: the SDK's
 * check, kept small for its bundle.
 */
export function checkServerFrame(v: unknown): ServerFrame | 'unknown_op' | 'bad_frame' {
  const op = (v as MaybeFrame)?.op;
  if (typeof op !== 'string') return 'bad_frame';
  // typeof, not `in`: a prototype's keys (`constructor`, `__proto__`) are not ops
  if (typeof (FIELDS as Record<string, unknown>)[op] !== 'string') return 'unknown_op';
  return badField(v, op) ? 'bad_frame' : (v as ServerFrame);
}

/** checkServerFrame, with a message saying what is wrong. */
export function toServerFrame(v: unknown): Decoded<ServerFrame> {
  const r = checkServerFrame(v);
  if (typeof r === 'object') return { ok: true, frame: r };
  const op = String((v as MaybeFrame)?.op).slice(0, 40);
  if (r === 'unknown_op') return fail(r, `unknown op ${op}`);
  return fail(r, typeof (v as MaybeFrame)?.op === 'string' ? `${op}: bad \`${badField(v, op)}\`` : 'not an object with a string `op`');
}

/** Parses one text frame from the server. */
export function decodeServerFrame(text: string): Decoded<ServerFrame> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return fail('not_json', 'not JSON');
  }
  return toServerFrame(v);
}
