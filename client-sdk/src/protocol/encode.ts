// The text of every server frame, with its fields in the order the server has always sent them (tests compare text).
import type { ErrorCode } from './codes';
import type { GapFrame, Json, MsgFrame, Ref, ServerFrame, WelcomeFrame } from './types';

/**
 * How every `msg` frame starts, the id's digits right after it. The Lua publish scripts (publishmany-n.lua,
 * functions/dps.lua) write the same bytes, and the server finds a live frame's id at this offset without parsing it.
 */
export const MSG_FRAME_PREFIX = '{"op":"msg","id":';
/** What a `msgs` frame's messages (their `msg` frames' text, comma-separated) sit between. */
export const MSGS_FRAME_OPEN = '{"op":"msgs","msgs":[';
export const MSGS_FRAME_CLOSE = ']}';

const json = JSON.stringify;
/** A ref is echoed exactly as the client sent it: a string stays a string, a number a number. */
const refField = (ref: Ref | undefined): string => (ref === undefined ? '' : `,"ref":${json(ref)}`);

// Numbers go into the text with `${n}`: for the finite numbers these frames carry it is what JSON.stringify writes.

/** `welcome`: the hello is accepted; `epochChanged` is written only when true. */
export function encodeWelcome(w: Omit<WelcomeFrame, 'op' | 'v'>): string {
  return `{"op":"welcome","v":1,"conn":${json(w.conn)},"recipient":${json(w.recipient)},"epoch":${json(w.epoch)},"resumeFrom":${w.resumeFrom},"head":${w.head}${w.epochChanged ? ',"epochChanged":true' : ''}}`;
}

/** `msg`: one message, byte for byte what the Lua publish scripts store for the same fields (`data` as JSON.stringify writes it). */
export function encodeMsg(id: number, ch: string, data: Json, ts: number): string {
  return `${MSG_FRAME_PREFIX}${id},"ch":${json(ch)},"data":${json(data)},"ts":${ts}}`;
}

/** `msgs` (an addition, for a hello with `batch`): catch-up messages in one frame, each exactly its own `msg` frame. */
export function encodeMsgs(msgs: readonly MsgFrame[]): string {
  return `${MSGS_FRAME_OPEN}${msgs.map((m) => encodeMsg(m.id, m.ch, m.data, m.ts)).join(',')}${MSGS_FRAME_CLOSE}`;
}

/** `live`: catch-up is over; everything up to `id` was sent or reported. */
export function encodeLive(id: number): string {
  return `{"op":"live","id":${id}}`;
}

/** `gap`: messages of `ch` with after < id ≤ upTo cannot be delivered, for `reason`. */
export function encodeGap(ch: string, after: number, upTo: number, reason: GapFrame['reason']): string {
  return `{"op":"gap","ch":${json(ch)},"after":${after},"upTo":${upTo},"reason":"${reason}"}`;
}

/** `subbed`: answers a `sub`; `ref` only when the client sent one. */
export function encodeSubbed(pattern: string, ref?: Ref): string {
  return `{"op":"subbed","pattern":${json(pattern)}${refField(ref)}}`;
}

/** `unsubbed`: answers an `unsub`; `ref` only when the client sent one. */
export function encodeUnsubbed(pattern: string, ref?: Ref): string {
  return `{"op":"unsubbed","pattern":${json(pattern)}${refField(ref)}}`;
}

/** `puback`: answers a `pub` with the stored id; `dup` when an earlier publish with the same key stored it. */
export function encodePuback(ref: Ref | undefined, id: number, dup = false): string {
  return `{"op":"puback"${refField(ref)},"id":${id}${dup ? ',"dup":true' : ''}}`;
}

/** `authed`: answers an `auth`; the new token is in force until `exp` (seconds since the Unix epoch). */
export function encodeAuthed(exp: number): string {
  return `{"op":"authed","exp":${exp}}`;
}

/** `pong`: answers a `ping`. */
export function encodePong(): string {
  return '{"op":"pong"}';
}

/** `error`: a request failed (or, before a close, why the connection ends); `ref` echoes the request's. */
export function encodeError(code: ErrorCode, message: string, ref?: Ref): string {
  return `{"op":"error","code":${json(code)},"message":${json(message)}${refField(ref)}}`;
}

/** Any server frame, by its op: the same text as that op's own encoder (for callers holding a frame object). */
export function encodeServerFrame(f: ServerFrame): string {
  switch (f.op) {
    case 'welcome':
      return encodeWelcome(f);
    case 'msg':
      return encodeMsg(f.id, f.ch, f.data, f.ts);
    case 'msgs':
      return encodeMsgs(f.msgs);
    case 'live':
      return encodeLive(f.id);
    case 'gap':
      return encodeGap(f.ch, f.after, f.upTo, f.reason);
    case 'subbed':
      return encodeSubbed(f.pattern, f.ref);
    case 'unsubbed':
      return encodeUnsubbed(f.pattern, f.ref);
    case 'puback':
      return encodePuback(f.ref, f.id, f.dup === true);
    case 'authed':
      return encodeAuthed(f.exp);
    case 'pong':
      return encodePong();
    case 'error':
      return encodeError(f.code, f.message, f.ref);
  }
}
