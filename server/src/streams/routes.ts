// Durable Streams over HTTP at /v1/stream/<path> (PROTOCOL.md of durable-streams): create, append, close, delete, HEAD,
// catch-up, long-poll and SSE reads, on the Store's stream layout (storage.ts). docs/durable-streams.md maps it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Grant } from '../auth';
import type { Store } from '../store';
import { formatOffset, nextCursor, parseOffset } from './offsets';
import { readChunk, streamSse } from './reading';
import { closedHeader, createConfig, essence, isJson, jsonMessages, producerOf, readBytes, StreamRefusal, streamSeqOf } from './requests';
import { Subscriptions } from './subscriptions';
import type { StreamMeta } from './types';
import { Wakeups } from './wakeups';

export const STREAM_PREFIX = '/v1/stream/';

export interface StreamRouteDeps {
  store: Store;
  /** the request's grant (the open grant while auth is off); throws without a valid token */
  grant(req: IncomingMessage, q: URLSearchParams): Promise<Grant>;
  longPollMs: number;
  /** ms a live reader looks again without being woken */
  recheckMs: number;
  /** the CORS origin rule of /v1/* */
  originAllowed(origin: string, req: IncomingMessage): boolean;
}

/** Bytes a POST or PUT may carry. */
const MAX_BODY = 8 << 20;

const EXPOSED =
  'stream-next-offset, stream-cursor, stream-up-to-date, stream-closed, stream-ttl, stream-expires-at, stream-sse-data-encoding, etag, location, producer-epoch, producer-seq, producer-expected-seq, producer-received-seq';
const ALLOWED =
  'authorization, content-type, if-none-match, stream-seq, stream-ttl, stream-expires-at, stream-closed, stream-forked-from, stream-fork-offset, stream-fork-sub-offset, producer-id, producer-epoch, producer-seq';

function end(res: ServerResponse, status: number, headers: Record<string, string> = {}, body?: Buffer | string): void {
  if (res.headersSent) return void res.end();
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (body !== undefined && status !== 204 && status !== 304) res.setHeader('content-length', Buffer.byteLength(body));
  res.writeHead(status);
  res.end(status === 204 || status === 304 ? undefined : body);
}

function fail(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  end(res, status, { 'content-type': 'application/json; charset=utf-8', ...headers }, JSON.stringify({ error: { message } }));
}

/** Headers of a read: offset, up-to-date, closure. */
function position(next: number, upToDate: boolean, closed: boolean): Record<string, string> {
  return {
    'stream-next-offset': formatOffset(next),
    ...(upToDate ? { 'stream-up-to-date': 'true' } : {}),
    ...(closed && upToDate ? { 'stream-closed': 'true' } : {}),
  };
}

export class StreamRoutes {
  readonly wakeups: Wakeups;
  /** open SSE responses and long-polls, ended when the server stops */
  private readonly live = new Set<AbortController>();

  /** §6–7 at /v1/stream/__ds/… */
  private readonly subs: Subscriptions;

  constructor(private readonly deps: StreamRouteDeps) {
    this.wakeups = new Wakeups(deps.recheckMs);
    this.subs = new Subscriptions(deps.store, (path) => this.wakeups.notify(path));
  }

  /** Ends every live read (the server stops). */
  close(): void {
    for (const c of this.live) c.abort();
    this.subs.close();
  }

  /** A stream has new data from `before` on: subscriptions linked to it (or whose pattern matches it) wake. */
  private changed(req: IncomingMessage, path: string, before: number): void {
    this.subs.changed(path, before, rootOf(req)).catch(() => {});
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('cross-origin-resource-policy', 'cross-origin');
    const origin = req.headers.origin;
    if (origin && this.deps.originAllowed(origin, req)) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'origin');
      res.setHeader('access-control-expose-headers', EXPOSED);
    }
    const url = new URL(req.url ?? '/', 'http://x');
    try {
      const path = streamPath(url.pathname);
      if (req.method === 'OPTIONS')
        return end(res, 204, {
          'access-control-allow-methods': 'GET, HEAD, PUT, POST, DELETE, OPTIONS',
          'access-control-allow-headers': ALLOWED,
          'access-control-max-age': '600',
        });
      if (!path) return fail(res, 400, 'a stream path is needed after /v1/stream/');
      if (path.startsWith('__ds/')) {
        // Callbacks, acks and releases carry their wake's own token; the rest is administration.
        if (!/\/(callback|ack|release)$/.test(path) && !(await this.deps.grant(req, url.searchParams)).admin)
          return fail(res, 403, 'subscriptions need a token with dps.admin');
        return await this.subs.handle(req, res, path.slice('__ds/'.length), rootOf(req));
      }
      const grant = await this.deps.grant(req, url.searchParams);
      const write = req.method === 'PUT' || req.method === 'POST' || req.method === 'DELETE';
      if (write ? !grant.canPublish(path) : !grant.canRead(path))
        return fail(res, 403, `${write ? 'writing' : 'reading'} ${JSON.stringify(path)} is not granted`);
      switch (req.method) {
        case 'PUT':
          return await this.create(req, res, path);
        case 'POST':
          return await this.append(req, res, path);
        case 'DELETE':
          return await this.remove(res, path);
        case 'HEAD':
          return await this.head(res, path);
        case 'GET':
          return await this.read(req, res, path, url.searchParams);
        default:
          return fail(res, 405, `${req.method} is not a stream operation`, { allow: 'GET, HEAD, PUT, POST, DELETE' });
      }
    } catch (err) {
      if (err instanceof StreamRefusal) return fail(res, err.status, err.message, err.headers);
      throw err;
    }
  }

  private async create(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const config = createConfig(req);
    const body = await readBytes(req, MAX_BODY);
    const json = config.fork ? undefined : isJson(config.ct);
    // A fork's content type may come from its source: its initial body is appended once the fork exists.
    let entries = body.length === 0 || config.fork ? [] : [body];
    if (json && body.length) entries = jsonMessages(body);
    let r = await this.deps.store.streams.create(path, config, entries);
    if (config.fork && r.status === 'created' && body.length) {
      // Initial data of a fork: appended after the inherited data, as the stream's type says.
      const a = await this.deps.store.streams.append(path, {
        ct: r.ct,
        close: false,
        entries: isJson(r.ct) ? jsonMessages(body) : [body],
      });
      r = { ...r, tail: a.tail };
    }
    const headers = {
      'content-type': r.ct,
      'stream-next-offset': formatOffset(r.tail),
      ...(r.closed ? { 'stream-closed': 'true' } : {}),
    };
    switch (r.status) {
      case 'created':
        this.wakeups.notify(path);
        if (r.tail > 0) this.changed(req, path, 0);
        return end(res, 201, { ...headers, location: `${rootOf(req)}${encodeURI(path)}` });
      case 'exists':
        return end(res, 200, headers);
      case 'conflict':
        return fail(res, 409, 'a stream with another config exists at this path');
      case 'gone':
        return fail(res, 409, 'this path belongs to a deleted stream whose forks still read it');
      case 'no-source':
        return fail(res, 404, 'the source stream does not exist');
      case 'source-gone':
        return fail(res, 409, 'the source stream was deleted');
      case 'bad-offset':
        return fail(res, 400, 'the fork offset is past the source stream’s tail');
      case 'bad-sub':
        return fail(res, 400, 'the fork sub-offset is past the next data boundary');
      case 'ct-mismatch':
        return fail(res, 409, 'the content type differs from the source stream’s');
    }
  }

  private async append(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const close = closedHeader(req);
    const producer = producerOf(req);
    const seq = streamSeqOf(req);
    const body = await readBytes(req, MAX_BODY);
    const ct = req.headers['content-type']?.trim().toLowerCase() ?? '';
    if (body.length === 0 && !close) return fail(res, 400, 'an append needs a body (or Stream-Closed: true to close)');
    if (body.length > 0 && !ct) return fail(res, 400, 'an append needs a Content-Type');
    let entries: Buffer[] = [];
    if (body.length > 0) {
      entries = isJson(ct) ? jsonMessages(body) : [body];
      if (entries.length === 0) return fail(res, 400, 'an empty JSON array appends nothing');
    }
    const r = await this.deps.store.streams.append(path, { ct: body.length ? ct : '', close, seq, producer, entries });
    const offset = { 'stream-next-offset': formatOffset(r.tail) };
    const closed: Record<string, string> = r.closed ? { 'stream-closed': 'true' } : {};
    const prod: Record<string, string> = producer ? { 'producer-epoch': String(producer.epoch) } : {};
    switch (r.status) {
      case 'ok':
        this.wakeups.notify(path);
        if (entries.length) this.changed(req, path, r.tail - entries.reduce((n, e) => n + e.length, 0));
        if (producer && entries.length) return end(res, 200, { ...offset, ...closed, ...prod, 'producer-seq': String(producer.seq) });
        return end(res, 204, { ...offset, ...closed, ...prod, ...(producer ? { 'producer-seq': String(producer.seq) } : {}) });
      case 'dup':
        return end(res, 204, { ...offset, ...closed, ...prod, 'producer-seq': String(r.a) });
      case 'closed-ok':
        return end(res, 204, { ...offset, 'stream-closed': 'true' });
      case 'missing':
        return fail(res, 404, 'no such stream');
      case 'gone':
        return fail(res, 410, 'the stream was deleted');
      case 'closed':
        return fail(res, 409, 'the stream is closed', { ...offset, 'stream-closed': 'true' });
      case 'ct-mismatch':
        return fail(res, 409, 'the content type differs from the stream’s');
      case 'seq-conflict':
        return fail(res, 409, 'Stream-Seq must increase');
      case 'stale':
        return fail(res, 403, 'a newer producer epoch exists', { 'producer-epoch': String(r.a) });
      case 'epoch-seq':
        return fail(res, 400, 'a new producer epoch starts at Producer-Seq 0');
      case 'gap':
        return fail(res, 409, 'Producer-Seq skips ahead', { 'producer-expected-seq': String(r.a), 'producer-received-seq': String(r.b) });
    }
  }

  private async remove(res: ServerResponse, path: string): Promise<void> {
    const r = await this.deps.store.streams.delete(path);
    if (r === 'missing') return fail(res, 404, 'no such stream');
    if (r === 'gone') return fail(res, 410, 'the stream was deleted');
    this.wakeups.notify(path);
    end(res, 204);
  }

  private metaHeaders(m: StreamMeta): Record<string, string> {
    return {
      'content-type': m.ct,
      ...(m.ttl !== undefined ? { 'stream-ttl': String(m.ttl) } : {}),
      ...(m.expAt !== undefined ? { 'stream-expires-at': m.expAt } : {}),
    };
  }

  private async head(res: ServerResponse, path: string): Promise<void> {
    const r = await this.deps.store.streams.read(path, 0, 0, false);
    if (r.status === 'missing') return end(res, 404);
    if (r.status !== 'ok') return end(res, 410);
    end(res, 200, {
      ...this.metaHeaders(r.meta),
      'stream-next-offset': formatOffset(r.meta.tail),
      ...(r.meta.closed ? { 'stream-closed': 'true' } : {}),
      'cache-control': 'no-store',
    });
  }

  /** Reads from `from`: the body (JSON streams: an array), where it ends, and the meta. */
  private chunk(path: string, from: number | 'now') {
    return readChunk(this.deps.store, path, from);
  }

  private async sse(res: ServerResponse, path: string, start: number | 'now', clientCursor: string | null): Promise<void> {
    const c = await this.chunk(path, start);
    if (c.status !== 'ok') return notRead(res, c.status);
    await streamSse(res, path, c, clientCursor, { next: (from) => this.chunk(path, from), wakeups: this.wakeups, live: this.live });
  }

  private async read(req: IncomingMessage, res: ServerResponse, path: string, q: URLSearchParams): Promise<void> {
    const live = q.get('live');
    if (live !== null && live !== 'long-poll' && live !== 'sse') return fail(res, 400, '`live` must be long-poll or sse');
    if (live && !q.has('offset')) return fail(res, 400, 'a live read needs an `offset`');
    const from = parseOffset(q.get('offset'));
    if (from === null) return fail(res, 400, '`offset` is not an offset of this server');
    if (live === 'sse') return this.sse(res, path, from, q.get('cursor'));
    let c = await this.chunk(path, from);
    if (c.status !== 'ok') return notRead(res, c.status);
    const first = c;
    if (live === 'long-poll') {
      const abort = new AbortController();
      this.live.add(abort);
      res.on('close', () => abort.abort());
      try {
        const deadline = Date.now() + this.deps.longPollMs;
        const start = first.from;
        while (c.status === 'ok' && c.count === 0 && !c.meta.closed && Date.now() < deadline && !abort.signal.aborted) {
          await this.wakeups.wait(path, deadline - Date.now(), abort.signal);
          c = await this.chunk(path, start);
        }
      } finally {
        this.live.delete(abort);
      }
      if (c.status !== 'ok') return notRead(res, c.status);
      const upToDate = c.next === c.meta.tail;
      const cursor: Record<string, string> = c.meta.closed && upToDate ? {} : { 'stream-cursor': nextCursor(q.get('cursor')) };
      if (c.count === 0)
        return end(res, 204, {
          ...this.metaHeaders(c.meta),
          ...position(c.next, true, c.meta.closed),
          ...cursor,
          'cache-control': 'no-store',
        });
      return this.answer(req, res, c, { ...cursor });
    }
    return this.answer(req, res, first, from === 'now' ? { 'cache-control': 'no-store' } : {}, from === 'now');
  }

  private answer(
    req: IncomingMessage,
    res: ServerResponse,
    c: { meta: StreamMeta; from: number; next: number; body: Buffer },
    extra: Record<string, string>,
    now = false,
  ): void {
    const upToDate = c.next === c.meta.tail;
    const etag = `"${c.meta.id}:${formatOffset(c.from)}:${formatOffset(c.next)}${c.meta.closed && upToDate ? ':c' : ''}"`;
    const headers: Record<string, string> = {
      ...this.metaHeaders(c.meta),
      ...position(c.next, upToDate, c.meta.closed),
      'cache-control': 'public, max-age=60, stale-while-revalidate=300',
      ...(now ? {} : { etag }),
      ...extra,
    };
    if (!now && req.headers['if-none-match'] === etag) return end(res, 304, headers);
    end(res, 200, headers, c.body);
  }
}

/** This server's /v1/stream/ URL as the request names it. */
function rootOf(req: IncomingMessage): string {
  return `http://${req.headers.host ?? 'localhost'}${STREAM_PREFIX}`;
}

/** The stream's path, percent-decoded; a malformed escape is a 400. */
function streamPath(pathname: string): string {
  try {
    return decodeURIComponent(pathname.slice(STREAM_PREFIX.length));
  } catch {
    throw new StreamRefusal(400, 'the stream path is not valid percent-encoding');
  }
}

/** A read of a stream that is not there, or not at that offset. */
function notRead(res: ServerResponse, status: 'missing' | 'gone' | 'bad-offset'): void {
  if (status === 'missing') return fail(res, 404, 'no such stream');
  if (status === 'gone') return fail(res, 410, 'the stream was deleted');
  fail(res, 400, '`offset` is past the stream’s tail');
}

export { essence };
