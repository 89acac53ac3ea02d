// Durable Streams requests: the body, the headers a PUT or POST carries, and JSON mode's messages, checked (400 on bad input).
import type { IncomingMessage } from 'node:http';
import { offsetPosition } from './offsets';
import type { Producer, StreamConfig } from './storage';

/** A request the protocol answers with a status before anything is stored. */
export class StreamRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'StreamRefusal';
  }
}

const bad = (message: string) => new StreamRefusal(400, message);

/**
 * The body as bytes, up to `limit`; past it a 413, answered once the rest has been read and dropped (a client still
 * sending would see its connection reset instead of the answer), or after 5 s of it.
 */
export function readBytes(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooLarge = () => {
      req.removeAllListeners('data');
      req.removeAllListeners('end');
      const refuse = () => {
        clearTimeout(timer);
        reject(new StreamRefusal(413, `body exceeds ${limit} bytes`, { connection: 'close' }));
      };
      const timer = setTimeout(refuse, 5_000);
      req.once('end', refuse);
      req.once('error', refuse);
      req.resume();
    };
    if (Number(req.headers['content-length']) > limit) return tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return tooLarge();
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** `Stream-Closed: true` (any case); any other value is as if absent. */
export function closedHeader(req: IncomingMessage): boolean {
  return header(req, 'stream-closed')?.trim().toLowerCase() === 'true';
}

/** The media type alone, lowercased: JSON mode is `application/json` whatever its parameters. */
export function essence(ct: string): string {
  return (ct.split(';')[0] ?? '').trim().toLowerCase();
}

export const isJson = (ct: string) => essence(ct) === 'application/json';

/** SSE data is text for text/* and JSON, base64 for anything else. */
export const isText = (ct: string) => essence(ct).startsWith('text/') || isJson(ct);

/** A stream path from a header (`Stream-Forked-From`): the path under /v1/stream/, or the bare name. */
export function streamPathOf(v: string): string {
  const p = v.split('?')[0] ?? '';
  return p.startsWith('/v1/stream/') ? p.slice('/v1/stream/'.length) : p.replace(/^\/+/, '');
}

const DECIMAL = /^(0|[1-9]\d*)$/;
const SAFE = 2 ** 53 - 1;

/** A PUT's config: content type, TTL or expiry (not both), closed, fork. */
export function createConfig(req: IncomingMessage): StreamConfig {
  const forkFrom = header(req, 'stream-forked-from');
  const rawCt = header(req, 'content-type')?.trim().toLowerCase();
  const ct = rawCt || (forkFrom ? '' : 'application/octet-stream');
  const ttlRaw = header(req, 'stream-ttl');
  const expRaw = header(req, 'stream-expires-at');
  if (ttlRaw !== undefined && expRaw !== undefined) throw bad('give Stream-TTL or Stream-Expires-At, not both');
  const c: StreamConfig = { ct, closed: closedHeader(req) };
  if (ttlRaw !== undefined) {
    if (!DECIMAL.test(ttlRaw) || Number(ttlRaw) > SAFE) throw bad('Stream-TTL must be a non-negative integer (seconds)');
    c.ttl = Number(ttlRaw);
  }
  if (expRaw !== undefined) {
    const ms = Date.parse(expRaw);
    if (!/^\d{4}-\d{2}-\d{2}T/.test(expRaw) || Number.isNaN(ms)) throw bad('Stream-Expires-At must be an RFC 3339 timestamp');
    c.expAt = expRaw;
    c.expMs = ms;
  }
  if (forkFrom !== undefined) {
    const src = streamPathOf(forkFrom);
    if (!src) throw bad('Stream-Forked-From must name a stream');
    c.fork = { src };
    const at = header(req, 'stream-fork-offset');
    if (at !== undefined) {
      const position = offsetPosition(at);
      if (position === null) throw bad('Stream-Fork-Offset is not an offset of this server');
      c.fork.offset = position;
    }
    const sub = header(req, 'stream-fork-sub-offset');
    if (sub !== undefined) {
      if (!DECIMAL.test(sub) || Number(sub) > SAFE) throw bad('Stream-Fork-Sub-Offset must be a non-negative integer');
      if (Number(sub) > 0) c.fork.sub = Number(sub);
    }
  } else if (header(req, 'stream-fork-offset') !== undefined || header(req, 'stream-fork-sub-offset') !== undefined) {
    throw bad('Stream-Fork-Offset needs Stream-Forked-From');
  }
  return c;
}

/** The idempotent producer headers: all three or none. */
export function producerOf(req: IncomingMessage): Producer | undefined {
  const id = header(req, 'producer-id');
  const epoch = header(req, 'producer-epoch');
  const seq = header(req, 'producer-seq');
  if (id === undefined && epoch === undefined && seq === undefined) return undefined;
  if (id === undefined || epoch === undefined || seq === undefined) throw bad('Producer-Id, Producer-Epoch and Producer-Seq go together');
  if (id === '') throw bad('Producer-Id must not be empty');
  for (const [name, v] of [
    ['Producer-Epoch', epoch],
    ['Producer-Seq', seq],
  ] as const)
    if (!DECIMAL.test(v) || Number(v) > SAFE) throw bad(`${name} must be a non-negative integer up to 2^53-1`);
  return { id, epoch: Number(epoch), seq: Number(seq) };
}

export function streamSeqOf(req: IncomingMessage): string | undefined {
  return header(req, 'stream-seq');
}

/**
 * A JSON stream's body as its messages, each as JSON text: an array is flattened one level (empty: none, which a POST
 * refuses), anything else is one message. Not JSON: a 400.
 */
export function jsonMessages(body: Buffer): Buffer[] {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    throw bad('the body is not valid JSON');
  }
  const list = Array.isArray(v) ? v : [v];
  return list.map((m) => Buffer.from(JSON.stringify(m) ?? 'null'));
}
