// Reading over HTTP: GET /v1/sse and GET /v1/poll (a hello in the query), POST /v1/ack; CORS for pages on other origins.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type HelloFrame, patternSetKey, toClientFrame } from '@durable-pubsub/client-sdk/protocol';
import { bearer } from './auth';
import { DpsError } from './errors';

/** long-poll timeouts, seconds (PROTOCOL.md) */
export const POLL_TIMEOUT = { default: 25, max: 60 };

/** `<epoch>:<id>`, as SSE event ids and `next` are written; null when it is not one. */
export function parsePosition(v: string): { epoch: string; id: number } | null {
  const m = /^([A-Za-z0-9_-]{1,64}):(\d{1,16})$/.exec(v);
  if (!m) return null;
  const id = Number(m[2]);
  return Number.isSafeInteger(id) ? { epoch: m[1] as string, id } : null;
}

/**
 * A hello from a request's query: `recipient`, `subs` (repeated), `from`, the token (`Authorization: Bearer`, else
 * `?token=`) and the resume point (`resume`, `<epoch>:<id>`). Checked as a hello frame is; a bad one is a 400.
 */
export function helloOf(req: IncomingMessage, q: URLSearchParams, resume: string | undefined, resumeName: string): HelloFrame {
  let epoch: string | undefined;
  let lastAckedId: number | undefined;
  if (resume) {
    const p = parsePosition(resume);
    if (!p) throw new DpsError('bad_request', `\`${resumeName}\` must be <epoch>:<id>, as the server wrote it`);
    ({ epoch, id: lastAckedId } = p);
  }
  if (!q.has('subs')) throw new DpsError('bad_request', '`subs` must be given: one parameter per pattern, at least one');
  const decoded = toClientFrame({
    op: 'hello',
    v: 1,
    recipient: q.get('recipient') ?? undefined,
    subs: q.getAll('subs'),
    from: q.get('from') ?? undefined,
    token: bearer(req.headers.authorization) ?? q.get('token') ?? undefined,
    epoch,
    lastAckedId,
  });
  if (!decoded.ok) throw new DpsError('bad_request', decoded.message.replace(/^hello: /, ''));
  return decoded.frame as HelloFrame;
}

/** The SSE resume point: a reconnecting EventSource's `Last-Event-ID` header, else `?lastEventId=` (for a new EventSource). */
export function sseResume(req: IncomingMessage, q: URLSearchParams): string | undefined {
  const header = req.headers['last-event-id'];
  return (typeof header === 'string' && header !== '' ? header : undefined) ?? (q.get('lastEventId') || undefined);
}

/** `?timeout=` of a long-poll, in ms. */
export function pollTimeoutMs(q: URLSearchParams): number {
  const v = q.get('timeout');
  if (v === null) return POLL_TIMEOUT.default * 1000;
  const s = Number(v);
  if (v === '' || !Number.isFinite(s) || s < 0 || s > POLL_TIMEOUT.max)
    throw new DpsError('bad_request', `\`timeout\` must be 0 to ${POLL_TIMEOUT.max} seconds`);
  return Math.round(s * 1000);
}

/** The body of POST /v1/ack: `{recipient, subs, id: "<epoch>:<id>"}`. */
export function ackOf(body: unknown): { recipient: string; setKey: string; epoch: string; id: number } {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (!Array.isArray(b.subs) || b.subs.length === 0) throw new DpsError('bad_request', '`subs` must be a non-empty array of patterns');
  const decoded = toClientFrame({ op: 'hello', v: 1, recipient: b.recipient, subs: b.subs });
  if (!decoded.ok) throw new DpsError('bad_request', decoded.message.replace(/^hello: /, ''));
  const position = typeof b.id === 'string' ? parsePosition(b.id) : null;
  if (!position) throw new DpsError('bad_request', '`id` must be "<epoch>:<id>", as the server wrote it');
  const hello = decoded.frame as HelloFrame;
  return { recipient: hello.recipient, setKey: patternSetKey(hello.subs), epoch: position.epoch, id: position.id };
}

/**
 * Cross-site guard, for WebSocket upgrades and cross-origin HTTP reads alike: a listed origin, or with no list any
 * origin while auth is off and the server's own host while it is on. Clients that send no Origin (not browsers) are
 * not affected.
 */
export function originAllowed(origin: string, host: string | undefined, allowed: string[] | undefined, authOn: boolean): boolean {
  if (allowed) return allowed.includes(origin);
  if (!authOn) return true;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

/**
 * Cross-origin pages may read and publish over HTTP when their `Origin` is allowed (the WebSocket upgrade's rule).
 * Tokens are bearer tokens, never cookies, so no credentials are allowed. True when the request was a preflight (answered).
 */
export function cors(req: IncomingMessage, res: ServerResponse, allowed: (origin: string) => boolean): boolean {
  const origin = req.headers.origin;
  if (!origin || !allowed(origin)) return false;
  res.setHeader('access-control-allow-origin', origin);
  res.setHeader('vary', 'origin');
  if (req.method !== 'OPTIONS') return false;
  res.writeHead(204, {
    'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
    'access-control-allow-headers': 'authorization, content-type, last-event-id',
    'access-control-max-age': '600',
  });
  res.end();
  return true;
}
