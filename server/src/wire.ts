// WebSocket framing done once per message: text frames as the bytes that go on the socket (a server's
// frames are not masked), so one live message is framed once for all its sockets and a replay page
// becomes one buffer. Sent with `socket.write` next to ws's own writes, in order: this server never
// compresses (perMessageDeflate off), so ws writes every frame synchronously and queues nothing.

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
  const first = frames[0] as Buffer;
  let end = first.byteOffset + first.length;
  for (let i = 1; i < frames.length; i++) {
    const f = frames[i] as Buffer;
    if (f.buffer !== first.buffer || f.byteOffset !== end) return Buffer.concat(frames);
    end += f.length;
  }
  return Buffer.from(first.buffer, first.byteOffset, end - first.byteOffset);
}
