// Frame types of wire protocol v1: what clients send and what the server sends.
import type { ErrorCode } from './codes';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Chosen by the client, echoed back unchanged in the answer: a string or a number (as JSON-RPC's `id`). */
export type Ref = string | number;

export interface HelloFrame {
  op: 'hello';
  v: 1;
  recipient: string;
  subs: string[];
  token?: string;
  epoch?: string;
  lastAckedId?: number;
  from?: 'head' | 'earliest';
  /** an addition to PROTOCOL.md: the client also reads `msgs` frames (catch-up sent several messages a frame) */
  batch?: true;
  /**
   * An addition to PROTOCOL.md: the server checks every replayed message and sends one that is not one valid JSON
   * value (stored around the server's checks) as a `gap` (reason `invalid`) instead. The SDK asks for it after it
   * met a frame it could not parse, so that it never has to skip a message on its own.
   */
  checked?: true;
}
export interface AckFrame {
  op: 'ack';
  id: number;
}
export interface SubFrame {
  op: 'sub';
  pattern: string;
  ref?: Ref;
}
export interface UnsubFrame {
  op: 'unsub';
  pattern: string;
  ref?: Ref;
}
export interface PubFrame {
  op: 'pub';
  ch: string;
  data: Json;
  ref?: Ref;
  key?: string;
}
export interface AuthFrame {
  op: 'auth';
  token: string;
}
export interface PingFrame {
  op: 'ping';
}
export type ClientFrame = HelloFrame | AckFrame | SubFrame | UnsubFrame | PubFrame | AuthFrame | PingFrame;

export interface WelcomeFrame {
  op: 'welcome';
  v: 1;
  conn: string;
  recipient: string;
  epoch: string;
  resumeFrom: number;
  head: number;
  epochChanged?: true;
}
export interface MsgFrame {
  op: 'msg';
  id: number;
  ch: string;
  data: Json;
  ts: number;
}
/**
 * An addition to PROTOCOL.md, only for clients whose hello said `batch: true`: several messages of the
 * catch-up in one frame, in id order, each exactly what its own `msg` frame would be. Live messages are
 * always single `msg` frames.
 */
export interface MsgsFrame {
  op: 'msgs';
  msgs: MsgFrame[];
}
export interface LiveFrame {
  op: 'live';
  id: number;
}
export interface GapFrame {
  op: 'gap';
  ch: string;
  after: number;
  upTo: number;
  /** `invalid` (an addition to PROTOCOL.md): a message written around the server's checks that is not one JSON value */
  reason: 'retention' | 'invalid';
}
export interface SubbedFrame {
  op: 'subbed';
  pattern: string;
  ref?: Ref;
}
export interface UnsubbedFrame {
  op: 'unsubbed';
  pattern: string;
  ref?: Ref;
}
export interface PubackFrame {
  op: 'puback';
  ref?: Ref;
  id: number;
  dup?: true;
}
export interface AuthedFrame {
  op: 'authed';
  exp: number;
}
export interface PongFrame {
  op: 'pong';
}
export interface ErrorFrame {
  op: 'error';
  code: ErrorCode;
  message: string;
  ref?: Ref;
}
export type ServerFrame =
  | WelcomeFrame
  | MsgFrame
  | MsgsFrame
  | LiveFrame
  | GapFrame
  | SubbedFrame
  | UnsubbedFrame
  | PubackFrame
  | AuthedFrame
  | PongFrame
  | ErrorFrame;
