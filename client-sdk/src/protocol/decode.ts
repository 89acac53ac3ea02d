// Parsing and validity checks for frames: one place decides what a well-formed frame is.
import { MAX_CHANNEL_BYTES, PROTOCOL_VERSION } from './codes';
import type { ClientFrame, HelloFrame, Json, PubFrame, Ref } from './types';

export type DecodeError = 'not_json' | 'bad_frame' | 'unknown_op';
export type Decoded<T> = { ok: true; frame: T } | { ok: false; error: DecodeError; message: string; ref?: Ref };

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
// Pure: an unused encoder is dropped from bundles that do not check channels (the SDK's).
const encoder = /* @__PURE__ */ new TextEncoder();

/** A channel: a non-empty, well-formed UTF-8 string of at most 256 bytes. */
export function isValidChannel(ch: unknown): ch is string {
  if (typeof ch !== 'string' || ch.length === 0 || LONE_SURROGATE.test(ch)) return false;
  return ch.length <= MAX_CHANNEL_BYTES && (ch.length * 3 <= MAX_CHANNEL_BYTES || encoder.encode(ch).length <= MAX_CHANNEL_BYTES);
}

/** Patterns follow the same size rule as channels (a literal pattern is a channel). */
export const isValidPattern = isValidChannel;

export function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const optString = (v: unknown): boolean => v === undefined || typeof v === 'string';
/** A `ref` is chosen by the client and echoed back unchanged: a string or a number (as JSON-RPC's `id`). */
const isRef = (v: unknown): v is Ref => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
const RECIPIENT_MAX = 200;
const KEY_MAX = 256;

function fail(error: DecodeError, message: string, ref?: unknown): Decoded<never> {
  return isRef(ref) ? { ok: false, error, message, ref } : { ok: false, error, message };
}

/** Checks a parsed value is a client frame; returns a fresh object holding only known fields. */
export function toClientFrame(v: unknown): Decoded<ClientFrame> {
  if (!isObject(v)) return fail('bad_frame', 'a frame must be a JSON object');
  const ref = v.ref;
  if (ref !== undefined && !isRef(ref)) return fail('bad_frame', '`ref` must be a string or a number');
  switch (v.op) {
    case 'hello': {
      if (v.v !== PROTOCOL_VERSION) return fail('bad_frame', 'hello: `v` must be 1');
      const r = v.recipient;
      if (typeof r !== 'string' || r.length === 0 || r.length > RECIPIENT_MAX || LONE_SURROGATE.test(r))
        return fail('bad_frame', `hello: \`recipient\` must be a non-empty string of at most ${RECIPIENT_MAX} characters`);
      if (!Array.isArray(v.subs) || !v.subs.every(isValidPattern))
        return fail('bad_frame', 'hello: `subs` must be an array of patterns (non-empty, at most 256 bytes)');
      if (!optString(v.token) || !optString(v.epoch)) return fail('bad_frame', 'hello: `token` and `epoch` must be strings');
      if (v.lastAckedId !== undefined && !isId(v.lastAckedId))
        return fail('bad_frame', 'hello: `lastAckedId` must be a non-negative integer');
      if (v.from !== undefined && v.from !== 'head' && v.from !== 'earliest')
        return fail('bad_frame', 'hello: `from` must be "head" or "earliest"');
      if (v.batch !== undefined && typeof v.batch !== 'boolean') return fail('bad_frame', 'hello: `batch` must be a boolean');
      if (v.checked !== undefined && typeof v.checked !== 'boolean') return fail('bad_frame', 'hello: `checked` must be a boolean');
      const frame: HelloFrame = { op: 'hello', v: 1, recipient: r, subs: [...new Set(v.subs as string[])] };
      if (v.token !== undefined) frame.token = v.token as string;
      if (v.epoch !== undefined) frame.epoch = v.epoch as string;
      if (v.lastAckedId !== undefined) frame.lastAckedId = v.lastAckedId;
      if (v.from !== undefined) frame.from = v.from;
      if (v.batch === true) frame.batch = true;
      if (v.checked === true) frame.checked = true;
      return { ok: true, frame };
    }
    case 'ack':
      if (!isId(v.id)) return fail('bad_frame', 'ack: `id` must be a non-negative integer');
      return { ok: true, frame: { op: 'ack', id: v.id } };
    case 'sub':
    case 'unsub': {
      if (!isValidPattern(v.pattern)) return fail('bad_frame', `${v.op}: \`pattern\` must be a non-empty string of at most 256 bytes`, ref);
      const frame: ClientFrame = ref === undefined ? { op: v.op, pattern: v.pattern } : { op: v.op, pattern: v.pattern, ref };
      return { ok: true, frame };
    }
    case 'pub': {
      if (!isValidChannel(v.ch)) return fail('bad_frame', 'pub: `ch` must be a non-empty string of at most 256 bytes', ref);
      if (!('data' in v) || v.data === undefined) return fail('bad_frame', 'pub: `data` is required', ref);
      if (v.key !== undefined && (typeof v.key !== 'string' || v.key.length === 0 || v.key.length > KEY_MAX))
        return fail('bad_frame', `pub: \`key\` must be a non-empty string of at most ${KEY_MAX} characters`, ref);
      const frame: PubFrame = { op: 'pub', ch: v.ch, data: v.data as Json };
      if (ref !== undefined) frame.ref = ref;
      if (v.key !== undefined) frame.key = v.key as string;
      return { ok: true, frame };
    }
    case 'auth':
      if (typeof v.token !== 'string') return fail('bad_frame', 'auth: `token` must be a string');
      return { ok: true, frame: { op: 'auth', token: v.token } };
    case 'ping':
      return { ok: true, frame: { op: 'ping' } };
    default:
      return fail(typeof v.op === 'string' ? 'unknown_op' : 'bad_frame', `unknown op ${JSON.stringify(String(v.op).slice(0, 40))}`, ref);
  }
}

/** Parses one text frame from a client. */
export function decodeClientFrame(text: string): Decoded<ClientFrame> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return fail('not_json', 'frame is not valid JSON');
  }
  return toClientFrame(v);
}
