// HTTP routes: publish API, admin, health and readiness, metrics, the demo page; JSON errors with PROTOCOL.md's statuses.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type HelloFrame, isValidChannel, type PubFrame, toClientFrame } from '@durable-pubsub/client-sdk/protocol';
import type { Registry } from 'prom-client';
import { type Authenticator, bearer, type Grant, OPEN_GRANT } from './auth';
import { type Bridge, frameId, validFrame } from './bridge';
import type { Config } from './config';
import { DpsError, toDpsError } from './errors';
import { ackOf, cors, helloOf, originAllowed, pollTimeoutMs, sseResume } from './http-read';
import type { Logger } from './log';
import type { Link } from './redis/liveness';
import { serveStatic } from './static';
import type { Store } from './store';
import { STREAM_PREFIX, type StreamRoutes } from './streams/routes';

export interface HttpDeps {
  /** Durable Streams at /v1/stream/* */
  streams?: StreamRoutes;
  store: Store;
  bridge: Bridge;
  config: Config;
  log: Logger;
  /** a built web app served at / (the demo dashboard) */
  staticDir?: string;
  /** open connections per (recipient, pattern set) on this node (all its worker processes), by `subMember` */
  connections(): Map<string, number> | Promise<Map<string, number>>;
  /** this process's metrics, or every worker process's */
  registry: Pick<Registry, 'metrics' | 'contentType'>;
  auth: Authenticator;
  /** each Redis connection is connected and answered its heartbeat within DPS_REDIS_TIMEOUT */
  redisUp(link: Link): boolean;
  /** readers over HTTP, registered with the server's connections; each throws (a Refusal, …) before it answers */
  readers: {
    sse(res: ServerResponse, hello: HelloFrame, ping: boolean): Promise<boolean>;
    poll(res: ServerResponse, hello: HelloFrame, timeoutMs: number): Promise<boolean>;
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  jsonText(res, status, JSON.stringify(body));
}

/** Answers JSON already written as text. */
function jsonText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  json(res, status, { error: { code, message } });
}

/**
 * Reads the body up to `limit` bytes, then calls `done` once: with its text, or a 413 past the limit (the rest is not
 * read). Callbacks, not a promise: the hot path of HTTP publishing. (No named closures per request here: tsx, which
 * runs the workspace, wraps each in a call that names it.)
 */
function readBodyThen(req: IncomingMessage, limit: number, done: (err: unknown, text: string) => void): void {
  if (Number(req.headers['content-length']) > limit) return done(new DpsError('too_large', `body exceeds ${limit} bytes`), '');
  let first: Buffer | undefined;
  let more: Buffer[] | undefined;
  let size = 0;
  let over = false;
  req.on('data', (chunk: Buffer) => {
    if (over) return;
    size += chunk.length;
    if (size > limit) {
      over = true;
      req.pause();
      return done(new DpsError('too_large', `body exceeds ${limit} bytes`), '');
    }
    // Mostly one chunk: no array, no copy.
    if (first === undefined) first = chunk;
    else (more ??= [first]).push(chunk);
  });
  req.on('end', () => {
    if (!over) done(null, more ? Buffer.concat(more).toString('utf8') : (first?.toString('utf8') ?? ''));
  });
  req.on('error', (err) => {
    if (over) return;
    over = true;
    done(err, '');
  });
}

/** Reads the body up to `limit` bytes; past it, a 413 (the rest is not read). */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => readBodyThen(req, limit, (err, text) => (err ? reject(err) : resolve(text))));
}

/** One message of a publish body: the same checks as a `pub` frame. */
function toItem(v: unknown, where: string): PubFrame {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DpsError('bad_request', `${where} must be an object`);
  const o = v as Record<string, unknown>;
  const decoded = toClientFrame({ op: 'pub', ch: o.ch, data: o.data, key: o.key });
  if (!decoded.ok) throw new DpsError('bad_request', `${where}: ${decoded.message.replace(/^pub: /, '')}`);
  return decoded.frame as PubFrame;
}

/** The request's grant (the open grant while auth is off); 401 without a valid token. `?token=` where a header cannot be set. */
function grantOf(req: IncomingMessage, deps: HttpDeps, query?: URLSearchParams): Promise<Grant> {
  return deps.auth.verify(bearer(req.headers.authorization) ?? query?.get('token') ?? undefined);
}

async function admin(req: IncomingMessage, deps: HttpDeps): Promise<void> {
  if (!(await grantOf(req, deps)).admin) throw new DpsError('forbidden', 'this route needs a token with dps.admin');
}

/**
 * POST /v1/publish: one message, or a batch as `{messages: [...]}`. From the body to the answer by callbacks, not a
 * promise per step: the hot path of HTTP publishing (a promise and an await per step cost ~10 % of its CPU).
 * `fail` answers an error; it is called at most once, and never after the answer.
 */
function publish(req: IncomingMessage, res: ServerResponse, deps: HttpDeps, fail: (err: unknown) => void): void {
  // Without auth every request has the open grant: no promise for it.
  if (!deps.auth.enabled) return publishBody(req, res, deps, OPEN_GRANT, fail);
  grantOf(req, deps).then((grant) => publishBody(req, res, deps, grant, fail), fail);
}

function publishBody(req: IncomingMessage, res: ServerResponse, deps: HttpDeps, grant: Grant, fail: (err: unknown) => void): void {
  readBodyThen(req, deps.config.maxBody, (err, text) => {
    if (err) return fail(err);
    try {
      const body = parseJson(text);
      if (typeof body === 'object' && body !== null && 'messages' in body) {
        const list = (body as { messages: unknown }).messages;
        if (!Array.isArray(list) || list.length === 0) throw new DpsError('bad_request', '`messages` must be a non-empty array');
        if (list.length > deps.config.maxBatch) throw new DpsError('too_large', `at most ${deps.config.maxBatch} messages per batch`);
        const items = list.map((m, i) => toItem(m, `messages[${i}]`));
        for (const m of items)
          if (!grant.canPublish(m.ch)) throw new DpsError('forbidden', `publishing on ${JSON.stringify(m.ch)} is not granted`);
        return void publishAll(deps.store, items).then((r) => json(res, 200, r), fail);
      }
      const item = toItem(body, 'body');
      if (!grant.canPublish(item.ch)) throw new DpsError('forbidden', `publishing on ${JSON.stringify(item.ch)} is not granted`);
      deps.store.publishThen(item.ch, item.data, item.key, (err, id, dup) => {
        if (err) return fail(err);
        jsonText(res, 200, dup ? `{"id":${id},"dup":true}` : `{"id":${id}}`);
      });
    } catch (err) {
      fail(err);
    }
  });
}

/** Publishes a batch (all in this turn's script call, in order): one callback each, not a promise each. */
function publishAll(store: Store, items: PubFrame[]): Promise<{ ids: number[]; dups?: boolean[] }> {
  return new Promise((resolve, reject) => {
    const ids: number[] = new Array(items.length);
    let dups: boolean[] | undefined;
    let left = items.length;
    let failed = false;
    for (const [i, m] of items.entries())
      store.publishThen(m.ch, m.data, m.key, (err, id, dup) => {
        if (failed) return;
        if (err) {
          failed = true;
          return reject(err);
        }
        ids[i] = id;
        if (dup) (dups ??= new Array(items.length).fill(false))[i] = true;
        if (--left === 0) resolve(dups ? { ids, dups } : { ids });
      });
  });
}

const HISTORY_LIMIT = { default: 100, max: 1000 };

/** A non-negative integer query parameter, or undefined when absent; anything else is a bad request. */
function idParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new DpsError('bad_request', `\`${name}\` must be a non-negative integer`);
  return n;
}

/**
 * GET /v1/history: a page of a channel's retained messages, oldest first after `after`, newest first before `before`
 * (neither: the newest). Stored frames go out as they are, spliced into the answer; one that is not a valid msg frame
 * (written around the server) is left out and named in `gaps` (an addition), never sent broken.
 */
async function history(req: IncomingMessage, res: ServerResponse, deps: HttpDeps, q: URLSearchParams): Promise<void> {
  const grant = await grantOf(req, deps, q);
  const ch = q.get('ch');
  if (!isValidChannel(ch)) throw new DpsError('bad_request', '`ch` must be a channel: 1 to 256 bytes of UTF-8');
  const after = idParam(q, 'after');
  const before = idParam(q, 'before');
  if (after !== undefined && before !== undefined) throw new DpsError('bad_request', 'give `after` or `before`, not both');
  const limit = idParam(q, 'limit') ?? HISTORY_LIMIT.default;
  if (limit < 1 || limit > HISTORY_LIMIT.max) throw new DpsError('bad_request', `\`limit\` must be 1 to ${HISTORY_LIMIT.max}`);
  if (!grant.canRead(ch)) throw new DpsError('forbidden', `reading ${JSON.stringify(ch)} is not granted`);
  const page = await deps.store.history(ch, { after, before, limit });
  const good: Buffer[] = [];
  const gaps: string[] = [];
  for (const f of page.frames) {
    if (validFrame(f)) good.push(f);
    else {
      const id = frameId(f);
      gaps.push(`{"after":${id - 1},"upTo":${id},"reason":"invalid"}`);
    }
  }
  const tail = `],"epoch":${JSON.stringify(deps.store.epoch)},"more":${page.more}${gaps.length ? `,"gaps":[${gaps.join(',')}]` : ''}}`;
  const body = Buffer.concat([Buffer.from('{"msgs":['), ...good.flatMap((f, i) => (i ? [COMMA, f] : [f])), Buffer.from(tail)]);
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
  res.end(body);
}

const COMMA = Buffer.from(',');

/** A request body's JSON; a body that is not JSON is a bad request. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new DpsError('bad_request', 'body is not valid JSON');
  }
}

/** JSON of a request body; a body that is not JSON is a bad request. */
async function jsonBody(req: IncomingMessage, deps: HttpDeps): Promise<unknown> {
  return parseJson(await readBody(req, deps.config.maxBody));
}

/** GET /v1/sse and GET /v1/poll: a hello in the query; the reader answers (or throws before it does). */
async function read(kind: 'sse' | 'poll', req: IncomingMessage, res: ServerResponse, deps: HttpDeps, q: URLSearchParams): Promise<void> {
  const served =
    kind === 'sse'
      ? await deps.readers.sse(res, helloOf(req, q, sseResume(req, q), 'Last-Event-ID'), q.get('ping') === '1')
      : await deps.readers.poll(res, helloOf(req, q, q.get('after') || undefined, 'after'), pollTimeoutMs(q));
  // Closed while it opened (the server stops, the log was reset): the client tries again.
  if (!served && !res.headersSent) sendError(res, 503, 'unavailable', 'the server could not serve this request, try again');
}

/** POST /v1/ack: moves a (recipient, pattern set)'s stored position forward, as a WebSocket's `ack` does. */
async function ack(req: IncomingMessage, res: ServerResponse, deps: HttpDeps): Promise<void> {
  const grant = await grantOf(req, deps);
  const a = ackOf(await jsonBody(req, deps));
  if (deps.auth.enabled && grant.subject !== a.recipient) throw new DpsError('unauthorized', 'the token is for another recipient');
  // Never past the head: a position beyond it would skip what is published up to it, silently (a WebSocket's ack is
  // capped by what it was sent; an HTTP reader's by what exists).
  const r = await deps.store.ack(a.recipient, a.setKey, Math.min(a.id, await deps.store.head()), a.epoch);
  if (r.status === 'epoch-gone')
    return json(res, 409, { error: { code: 'epoch_changed', message: 'the log was reset (new epoch): this position is gone' } });
  if (r.status === 'forgotten') return sendError(res, 404, 'not_found', 'the recipient has no such pattern set (never used, or forgotten)');
  json(res, 200, { acked: r.position });
}

/** 200 while both Redis connections answer (command: publish, replay; subscriber: live delivery), else 503 saying which. */
function ready(res: ServerResponse, deps: HttpDeps): void {
  const command = deps.redisUp('command');
  const subscriber = deps.redisUp('subscriber') && deps.bridge.state === 'up';
  if (command && subscriber) return json(res, 200, { ok: true, redis: 'up' });
  const down = [command ? '' : 'command', subscriber ? '' : 'subscriber'].filter(Boolean).join(' and ');
  json(res, 503, {
    error: { code: 'unavailable', message: `Redis is unreachable (the ${down} connection)` },
    redis: { command, subscriber },
  });
}

/** The routes; anything else goes to `next` (the embedding app's own routes), or is a 404 without it. */
export function httpHandler(deps: HttpDeps) {
  /** Answers an error with its PROTOCOL.md status, unless an answer has begun. */
  const fail = (res: ServerResponse, path: string | undefined, err: unknown) => {
    const e = toDpsError(err, deps.store.redisReady);
    if (e.code === 'internal') deps.log.error('http request failed', { path, err: String(err), cause: String(e.cause ?? '') });
    if (e.code === 'too_large') res.setHeader('connection', 'close');
    if (!res.headersSent) sendError(res, e.status, e.code, e.message);
  };
  return async (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): Promise<void> => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const { config, auth } = deps;
    try {
      if (deps.streams && path.startsWith(STREAM_PREFIX)) return await deps.streams.handle(req, res);
      if (path.startsWith('/v1/') && cors(req, res, (o) => originAllowed(o, req.headers.host, config.allowedOrigins, auth.enabled))) return;
      if ((path === '/v1/sse' || path === '/v1/poll') && req.method === 'GET')
        return await read(path === '/v1/sse' ? 'sse' : 'poll', req, res, deps, new URL(req.url ?? '/', 'http://x').searchParams);
      if (path === '/v1/ack') {
        if (req.method !== 'POST') return sendError(res, 405, 'method_not_allowed', 'use POST');
        return await ack(req, res, deps);
      }
      if (path === '/v1/publish') {
        if (req.method !== 'POST') return sendError(res, 405, 'method_not_allowed', 'use POST');
        return publish(req, res, deps, (err) => fail(res, path, err));
      }
      if (path === '/healthz') return json(res, 200, { ok: true });
      if (path === '/v1/head' && req.method === 'GET') {
        // A read: any valid token while auth is on (the head is an id, no channel's content).
        await grantOf(req, deps, new URL(req.url ?? '/', 'http://x').searchParams);
        return json(res, 200, await deps.store.headPosition());
      }
      if (path === '/v1/history' && req.method === 'GET')
        return await history(req, res, deps, new URL(req.url ?? '/', 'http://x').searchParams);
      if (path === '/metrics' && req.method === 'GET') {
        const text = await deps.registry.metrics();
        res.writeHead(200, { 'content-type': deps.registry.contentType });
        return void res.end(text);
      }
      if (path.startsWith('/v1/recipients') || path === '/v1/channels') await admin(req, deps);
      if (path === '/v1/channels' && req.method === 'GET') return json(res, 200, { channels: await deps.store.channelStats() });
      if (path === '/readyz') return ready(res, deps);
      if (path === '/v1/recipients' && req.method === 'GET')
        return json(res, 200, { recipients: await deps.store.subscriptions.stats(await deps.store.channels(), await deps.connections()) });
      const forget = /^\/v1\/recipients\/([^/]+)$/.exec(path);
      if (forget && req.method === 'DELETE') {
        const removed = await deps.store.subscriptions.forget(decodeURIComponent(forget[1] as string));
        return removed ? json(res, 200, { ok: true }) : sendError(res, 404, 'not_found', 'no such recipient');
      }
      if (deps.staticDir && (await serveStatic(deps.staticDir, req, res))) return;
      if (next) return next();
      sendError(res, 404, 'not_found', `no route ${req.method} ${path}`);
    } catch (err) {
      fail(res, path, err);
    }
  };
}
