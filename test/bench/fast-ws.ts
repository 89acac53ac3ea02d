// A minimal WebSocket client for the load generator: handshake with node:http, frames read straight off the
// TCP stream and handed over as byte ranges, no per-frame decoding or events. `ws` costs ~1.5 µs per frame
// on this machine, which at 300k+ deliveries/s made the load process (not the systems) the bottleneck.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';

export interface FastWs {
  /** sends one text frame (masked with a zero key, which the protocol allows) */
  send(text: string): void;
  close(): void;
}

/** Called for each text or binary frame with its payload as `buf[start, end)`; valid only during the call. */
export type OnFrame = (buf: Buffer, start: number, end: number) => void;

function frameOf(text: string | Buffer, opcode = 1): Buffer {
  const payload = typeof text === 'string' ? Buffer.from(text) : text;
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.alloc(head + 4 + len);
  out[0] = 0x80 | opcode; // FIN, text (or a pong)
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(len), 2);
  }
  payload.copy(out, head + 4); // mask key 0: the payload goes as it is
  return out;
}

/**
 * Opens `url` (ws://host:port/path); resolves once the upgrade is done. `localAddress` binds the source address
 * (127.0.0.2, 127.0.0.3…: each has its own ~28k ephemeral ports towards one destination), and `localPort` its port:
 * an explicit port spares the kernel its search for a free one, which costs more the more are in use (at 10,000
 * connections from one address, most of the load's CPU was the kernel's).
 */
export function openFastWs(
  url: string,
  onFrame: OnFrame,
  /** the socket closed: the code of the server's close frame, 1006 when none came */
  onClose?: (code: number) => void,
  localAddress?: string,
  localPort?: number,
): Promise<FastWs> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname,
      port: u.port,
      path: u.pathname,
      localAddress,
      localPort,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      },
    });
    req.on('error', reject);
    req.on('response', (res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    req.on('upgrade', (_res, socket: Socket, head: Buffer) => {
      socket.setNoDelay(true);
      let rest: Buffer | null = null;
      let closeCode = 1006;
      const read = (chunk: Buffer) => {
        const buf: Buffer = rest ? Buffer.concat([rest, chunk]) : chunk;
        let off = 0;
        for (;;) {
          const left = buf.length - off;
          if (left < 2) break;
          const b0 = buf[off] as number;
          let len = (buf[off + 1] as number) & 0x7f;
          let hdr = 2;
          if (len === 126) {
            if (left < 4) break;
            len = buf.readUInt16BE(off + 2);
            hdr = 4;
          } else if (len === 127) {
            if (left < 10) break;
            len = Number(buf.readBigUInt64BE(off + 2));
            hdr = 10;
          }
          if (left < hdr + len) break;
          if ((b0 & 0x80) === 0) throw new Error('fragmented frames are not expected from these servers');
          const opcode = b0 & 0x0f;
          if (opcode === 1 || opcode === 2) onFrame(buf, off + hdr, off + hdr + len);
          else if (opcode === 8) {
            closeCode = len >= 2 ? buf.readUInt16BE(off + hdr) : 1005;
            socket.destroy();
          }
          // A server's heartbeat ping is answered, as every WebSocket stack does (idle connections stay open).
          else if (opcode === 9) socket.write(frameOf(Buffer.from(buf.subarray(off + hdr, off + hdr + len)), 0x0a));
          off += hdr + len;
        }
        rest = off < buf.length ? buf.subarray(off) : null;
      };
      // What the frame handlers send in answer to one chunk goes out as one write (as any batching client
      // does): a write per answer made the load process, not the server, the limit of WS publishing.
      socket.on('data', (chunk: Buffer) => {
        socket.cork();
        try {
          read(chunk);
        } finally {
          socket.uncork();
        }
      });
      socket.on('close', () => onClose?.(closeCode));
      socket.on('error', () => {});
      if (head.length) read(head);
      resolve({ send: (text) => socket.write(frameOf(text)), close: () => socket.destroy() });
    });
    req.end();
  });
}

/** Does `buf[start…]` begin with `prefix` (ASCII)? Byte by byte: `buf.compare` is a native call per frame. */
export function startsWith(buf: Buffer, start: number, end: number, prefix: Buffer): boolean {
  if (end - start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buf[start + i] !== prefix[i]) return false;
  return true;
}
