// WebSocket framing done once per message: text frames as the bytes that go on the socket (a server's
// frames are not masked), so one live message is framed once for all its sockets and a replay page
// becomes one buffer. Sent with `socket.write` next to ws's own writes, in order: this server never
// compresses (perMessageDeflate off), so ws writes every frame synchronously and queues nothing.
import { MSGS_FRAME_CLOSE, MSGS_FRAME_OPEN } from '@durable-pubsub/client-sdk/protocol';

function headerLength(len: number): number {
  return len < 126 ? 2 : len < 65536 ? 4 : 10;
}

function writeHeader(out: Buffer, at: number, len: number): number {
  out[at] = 0x81; // FIN, text
  if (len < 126) {
    out[at + 1] = len;
    return at + 2;
  }
  if (len < 65536) {
    out[at + 1] = 126;
    out.writeUInt16BE(len, at + 2);
    return at + 4;
  }
  out[at + 1] = 127;
  out.writeUInt32BE(Math.floor(len / 2 ** 32), at + 2);
  out.writeUInt32BE(len >>> 0, at + 6);
  return at + 10;
}

/** The payload of a text frame built here (server frames are never masked). */
export function payloadOf(frame: Buffer): Buffer {
  const len = (frame[1] as number) & 0x7f;
  return frame.subarray(len < 126 ? 2 : len === 126 ? 4 : 10);
}

/** Calls `fn` with the payload of each frame in `bytes` (frames built here, back to back), in order. */
export function eachPayload(bytes: Buffer, fn: (payload: Buffer) => void): void {
  let at = 0;
  while (at < bytes.length) {
    const len7 = (bytes[at + 1] as number) & 0x7f;
    const start = at + (len7 < 126 ? 2 : len7 === 126 ? 4 : 10);
    const len =
      len7 < 126 ? len7 : len7 === 126 ? bytes.readUInt16BE(at + 2) : bytes.readUInt32BE(at + 2) * 2 ** 32 + bytes.readUInt32BE(at + 6);
    fn(bytes.subarray(start, start + len));
    at = start + len;
  }
}

/** One text frame carrying `payload` (UTF-8 JSON), header included. */
export function textFrame(payload: Buffer): Buffer {
  return textFrames([payload]);
}

/** The text frames of `payloads`, back to back in one buffer. */
export function textFrames(payloads: Buffer[]): Buffer {
  let size = 0;
  for (const p of payloads) size += headerLength(p.length) + p.length;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const p of payloads) {
    at = writeHeader(out, at, p.length);
    at += p.copy(out, at);
  }
  return out;
}

/** The text frame of each of `payloads`, as views into one buffer where they lie back to back. */
export function textFrameViews(payloads: Buffer[]): Buffer[] {
  const all = textFrames(payloads);
  const views: Buffer[] = [];
  let at = 0;
  for (const p of payloads) {
    const end = at + headerLength(p.length) + p.length;
    views.push(all.subarray(at, end));
    at = end;
  }
  return views;
}

/**
 * `frames` as one buffer: when each starts in memory where the one before it ends (views of one
 * `textFrameViews` read, in order), a view over them all — no copy, the same bytes for every reader.
 */
export function joinFrames(frames: Buffer[]): Buffer {
  const end = contiguousEnd(frames);
  const first = frames[0] as Buffer;
  return end < 0 ? Buffer.concat(frames) : Buffer.from(first.buffer, first.byteOffset, end - first.byteOffset);
}

/** Where `frames` end in their memory when each starts where the one before it ends; -1 when not. */
function contiguousEnd(frames: Buffer[]): number {
  const first = frames[0] as Buffer;
  let end = first.byteOffset + first.length;
  for (let i = 1; i < frames.length; i++) {
    const f = frames[i] as Buffer;
    if (f.buffer !== first.buffer || f.byteOffset !== end) return -1;
    end += f.length;
  }
  return end;
}

/** A catch-up `msgs` frame's payload is at most this long (unless one message alone is longer). */
export const MSGS_MAX_BYTES = 64 * 1024;
const MSGS_OPEN = Buffer.from(MSGS_FRAME_OPEN);
const MSGS_CLOSE = Buffer.from(MSGS_FRAME_CLOSE);

/** Where the payload of a frame built here starts (server frames are not masked). */
function payloadStart(frame: Buffer): number {
  const len = (frame[1] as number) & 127;
  return len < 126 ? 2 : len === 126 ? 4 : 10;
}

/**
 * `frames` (stored `msg` frames, as textFrameViews makes them) as `msgs` frames for a client whose hello
 * said `batch`: the payloads between commas, `{"op":"msgs","msgs":[…]}`, a new frame every `maxBytes`.
 * One buffer, one copy of each payload.
 */
export function msgsFrames(frames: Buffer[], maxBytes = MSGS_MAX_BYTES): Buffer {
  const ends: number[] = [];
  const sizes: number[] = [];
  let size = 0;
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i] as Buffer;
    const n = f.length - payloadStart(f);
    if (size && size + 1 + n + MSGS_CLOSE.length > maxBytes) {
      ends.push(i);
      sizes.push(size + MSGS_CLOSE.length);
      size = 0;
    }
    size += (size ? 1 : MSGS_OPEN.length) + n;
  }
  ends.push(frames.length);
  sizes.push(size + MSGS_CLOSE.length);
  let total = 0;
  for (const len of sizes) total += headerLength(len) + len;
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  let i = 0;
  ends.forEach((end, g) => {
    at = writeHeader(out, at, sizes[g] as number);
    at += MSGS_OPEN.copy(out, at);
    for (const first = i; i < end; i++) {
      const f = frames[i] as Buffer;
      if (i > first) out[at++] = 0x2c; // ,
      at += f.copy(out, at, payloadStart(f));
    }
    at += MSGS_CLOSE.copy(out, at);
  });
  return out;
}

/**
 * msgsFrames, built once for every client that sends the same run of one read (clients resuming from one point):
 * bytes at the same place in the same memory are the same frames, and a read's buffer is never written again. Kept
 * as long as that memory is, by a read or a page still being written. One per server.
 */
export class MsgsCache {
  private readonly built = new WeakMap<ArrayBufferLike, Map<string, Buffer>>();

  frames(frames: Buffer[]): Buffer {
    const end = contiguousEnd(frames);
    if (end < 0) return msgsFrames(frames);
    const first = frames[0] as Buffer;
    let built = this.built.get(first.buffer);
    if (!built) this.built.set(first.buffer, (built = new Map()));
    const key = `${first.byteOffset} ${end}`;
    let out = built.get(key);
    if (!out) built.set(key, (out = msgsFrames(frames)));
    return out;
  }
}
