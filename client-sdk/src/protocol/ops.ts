// The op names of wire protocol v1 as values (types.ts has them only as types): for the guard, the docs and tests.
import type { ClientFrame, ServerFrame } from './types';

// Records rather than arrays: the compiler then refuses a list that misses an op of the unions, or names one they lack.
const CLIENT: Record<ClientFrame['op'], 1> = { hello: 1, ack: 1, sub: 1, unsub: 1, pub: 1, auth: 1, ping: 1 };
const SERVER: Record<ServerFrame['op'], 1> = {
  welcome: 1,
  msg: 1,
  msgs: 1,
  live: 1,
  gap: 1,
  subbed: 1,
  unsubbed: 1,
  puback: 1,
  authed: 1,
  pong: 1,
  error: 1,
};

/** Every op a client may send. */
export const CLIENT_OPS = Object.keys(CLIENT) as ClientFrame['op'][];
/** Every op the server may send (`msgs` only to a client whose hello said `batch`). */
export const SERVER_OPS = Object.keys(SERVER) as ServerFrame['op'][];
