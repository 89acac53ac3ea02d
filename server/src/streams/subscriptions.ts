// Durable Streams subscriptions (§6–7) at /v1/stream/__ds/…: glob and explicit stream links with acked offsets, wakes
// by signed webhook or by a pull-wake stream, claim/ack/release leases, generation fencing. State is one JSON value per
// subscription in the Store; this process serializes its own changes to each (one node: docs/durable-streams.md).
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Store } from '../store';
import { globMatcher, type Link, type LinkType, linkType } from './links';
import { formatOffset, offsetPosition } from './offsets';
import { readBytes, StreamRefusal } from './requests';
import { type Config, configOf, parseBody, SubError } from './subscription-config';
import { WebhookSigner } from './webhooks';

interface State {
  id: string;
  config: Config;
  hash: string;
  createdAt: string;
  links: Record<string, Link>;
  generation: number;
  /** the wake in flight, if any, with its snapshot of tails */
  wake: { id: string; token: string; holder: string | null; leaseUntil: number; tails: Record<string, number> } | null;
  status: 'active' | 'failed';
}

function json(res: ServerResponse, status: number, body?: unknown, type = 'application/json'): void {
  if (body === undefined) {
    res.writeHead(status);
    return void res.end();
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export class Subscriptions {
  private readonly signer: WebhookSigner;
  /** per subscription: the tail of its queue of changes (one at a time on this process) */
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** the server's /v1/stream/ URL as the last request named it (callback URLs are built on it) */
  private base = 'http://localhost/v1/stream/';

  constructor(
    private readonly store: Store,
    private readonly onAppended: (path: string) => void,
  ) {
    this.signer = new WebhookSigner(store);
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
  }

  /** Runs `fn` on subscription `id` after every earlier change to it here. */
  private serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    this.queues.set(id, tail);
    void tail.then(() => this.queues.get(id) === tail && this.queues.delete(id));
    return next;
  }

  private async load(id: string): Promise<State | null> {
    const raw = await this.store.streams.subscription(id);
    return raw ? (JSON.parse(raw) as State) : null;
  }

  private save(s: State): Promise<void> {
    return this.store.streams.saveSubscription(s.id, JSON.stringify(s));
  }

  private async tail(path: string): Promise<number | null> {
    const r = await this.store.streams.read(path, 0, 0, false);
    return r.status === 'ok' ? r.meta.tail : null;
  }

  /** /v1/stream/__ds/<rest> */
  async handle(req: IncomingMessage, res: ServerResponse, rest: string, root: string): Promise<void> {
    this.base = root;
    try {
      if (rest === 'jwks.json' && req.method === 'GET') {
        res.setHeader('cache-control', 'public, max-age=300');
        return json(res, 200, await this.signer.jwks(), 'application/jwk-set+json');
      }
      const m = /^subscriptions\/([^/]+)(?:\/(streams|callback|claim|ack|release)(?:\/(.+))?)?$/.exec(rest);
      if (!m) throw new SubError(404, 'NOT_FOUND');
      const [, id, action, tailPath] = m as unknown as [string, string, string | undefined, string | undefined];
      const body = req.method === 'POST' || req.method === 'PUT' ? await readBytes(req, 1 << 20) : Buffer.alloc(0);
      const input = body.length ? parseBody(body) : {};
      if (!action) {
        if (req.method === 'PUT') return await this.create(res, id, input, root);
        if (req.method === 'GET') return await this.get(res, id, root);
        if (req.method === 'DELETE') {
          await this.serial(id, () => this.store.streams.saveSubscription(id, null));
          return json(res, 204);
        }
      }
      if (action === 'streams' && req.method === 'POST' && !tailPath) return await this.link(res, id, input, true);
      if (action === 'streams' && req.method === 'DELETE' && tailPath) return await this.link(res, id, { streams: [tailPath] }, false);
      if ((action === 'callback' || action === 'ack' || action === 'release') && req.method === 'POST')
        return await this.settle(req, res, id, input, action);
      if (action === 'claim' && req.method === 'POST') return await this.claim(res, id, input);
      throw new SubError(405, 'METHOD_NOT_ALLOWED');
    } catch (err) {
      if (err instanceof SubError) return json(res, err.status, err.body);
      if (err instanceof StreamRefusal) return json(res, err.status, { error: { code: 'INVALID_REQUEST', message: err.message } });
      throw err;
    }
  }

  private create(res: ServerResponse, id: string, input: Record<string, unknown>, root: string): Promise<void> {
    const config = configOf(input);
    const hash = createHash('sha256').update(JSON.stringify(config)).digest('hex');
    return this.serial(id, async () => {
      const old = await this.load(id);
      if (old) {
        if (old.hash !== hash) throw new SubError(409, 'CONFLICT', { message: 'this subscription exists with another config' });
        return json(res, 200, await this.view(old, root));
      }
      const s: State = { id, config, hash, createdAt: new Date().toISOString(), links: {}, generation: 0, wake: null, status: 'active' };
      // Existing matching streams are linked at their tails: no replay of history.
      const glob = config.pattern ? globMatcher(config.pattern) : null;
      const paths = glob ? (await this.store.streams.paths()).filter(glob) : [];
      for (const p of new Set([...paths, ...config.streams])) {
        s.links[p] = { glob: paths.includes(p), explicit: config.streams.includes(p), acked: (await this.tail(p)) ?? 0 };
      }
      await this.save(s);
      json(res, 201, await this.view(s, root));
    });
  }

  private async view(s: State, root: string) {
    const kid = s.config.webhook ? await this.signer.kid() : null;
    return {
      id: s.id,
      subscription_id: s.id,
      type: s.config.type,
      pattern: s.config.pattern,
      streams: Object.entries(s.links).map(([path, l]) => ({ path, link_type: linkType(l), acked_offset: formatOffset(l.acked) })),
      webhook:
        s.config.webhook && kid ? { url: s.config.webhook.url, signing: { alg: 'ed25519', kid, jwks_url: `${root}__ds/jwks.json` } } : null,
      wake_stream: s.config.wake_stream,
      lease_ttl_ms: s.config.lease_ttl_ms,
      created_at: s.createdAt,
      status: s.status,
      description: s.config.description,
    };
  }

  private async get(res: ServerResponse, id: string, root: string): Promise<void> {
    const s = await this.load(id);
    if (!s) throw new SubError(404, 'NOT_FOUND');
    json(res, 200, await this.view(s, root));
  }

  private link(res: ServerResponse, id: string, input: Record<string, unknown>, add: boolean): Promise<void> {
    const list = input.streams;
    if (!Array.isArray(list) || !list.every((p) => typeof p === 'string' && p))
      throw new SubError(400, 'INVALID_REQUEST', { message: '`streams` must be stream paths' });
    return this.serial(id, async () => {
      const s = await this.load(id);
      if (!s) throw new SubError(404, 'NOT_FOUND');
      for (const p of list as string[]) {
        const l = s.links[p];
        if (add) s.links[p] = l ? { ...l, explicit: true } : { glob: false, explicit: true, acked: (await this.tail(p)) ?? 0 };
        else if (l?.glob) l.explicit = false;
        else delete s.links[p];
      }
      await this.save(s);
      json(res, 204);
    });
  }

  /** A stream changed (created with data, appended to): link it where a pattern matches, and wake who has work. */
  async changed(path: string, before: number, root: string): Promise<void> {
    this.base = root;
    for (const id of await this.store.streams.subscriptionIds()) {
      await this.serial(id, async () => {
        const s = await this.load(id);
        if (!s) return;
        const globbed = s.config.pattern !== null && globMatcher(s.config.pattern)(path);
        if (!s.links[path] && globbed) {
          s.links[path] = { glob: true, explicit: false, acked: before };
          await this.save(s);
        }
        if (s.links[path]) await this.wake(s);
      });
    }
  }

  /** The linked streams with their tails, those with pending data marked. */
  private async snapshot(s: State) {
    const out: { path: string; link_type: LinkType; acked_offset: string; tail_offset: string; has_pending: boolean; tail: number }[] = [];
    for (const [path, l] of Object.entries(s.links)) {
      const tail = (await this.tail(path)) ?? l.acked;
      out.push({
        path,
        link_type: linkType(l),
        acked_offset: formatOffset(l.acked),
        tail_offset: formatOffset(tail),
        has_pending: tail > l.acked,
        tail,
      });
    }
    return out;
  }

  /** Starts a wake if `s` has pending work and none is in flight (called inside `serial`). */
  private async wake(s: State): Promise<void> {
    if (s.wake && s.wake.leaseUntil > Date.now()) return;
    const streams = await this.snapshot(s);
    if (!streams.some((x) => x.has_pending)) {
      if (s.wake) {
        s.wake = null;
        await this.save(s);
      }
      return;
    }
    s.generation += 1;
    s.wake = {
      id: `w_${randomBytes(9).toString('base64url')}`,
      token: randomBytes(24).toString('base64url'),
      holder: null,
      leaseUntil: Date.now() + s.config.lease_ttl_ms,
      tails: Object.fromEntries(streams.map((x) => [x.path, x.tail])),
    };
    await this.save(s);
    this.later(s.id, s.config.lease_ttl_ms + 50);
    if (s.config.wake_stream) {
      const event = Buffer.from(
        JSON.stringify({
          type: 'wake',
          subscription_id: s.id,
          stream: streams.find((x) => x.has_pending)?.path,
          generation: s.generation,
          ts: Date.now(),
        }),
      );
      const r = await this.store.streams.append(s.config.wake_stream, { ct: 'application/json', close: false, entries: [event] });
      if (r.status === 'ok') this.onAppended(s.config.wake_stream);
      return;
    }
    void this.deliver(
      s.id,
      s.generation,
      streams.map(({ tail: _, ...x }) => x),
    );
  }

  /** Looks again after a lease may have run out. */
  private later(id: string, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      void this.serial(id, async () => {
        const s = await this.load(id);
        if (s) await this.wake(s);
      }).catch(() => {});
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  /** POSTs a wake to the webhook, signed; `{done:true}` acks its snapshot. */
  private async deliver(id: string, generation: number, streams: unknown[]): Promise<void> {
    const s = await this.load(id);
    if (!s?.wake || s.generation !== generation || !s.config.webhook) return;
    const body = JSON.stringify({
      subscription_id: id,
      wake_id: s.wake.id,
      generation,
      streams,
      callback_url: `${this.base}__ds/subscriptions/${encodeURIComponent(id)}/callback`,
      callback_token: s.wake.token,
    });
    let done = false;
    try {
      done = (await this.signer.post(s.config.webhook.url, body)).done;
    } catch {
      await this.serial(id, async () => {
        const cur = await this.load(id);
        if (cur && cur.generation === generation) {
          cur.status = 'failed';
          await this.save(cur);
        }
      });
      return;
    }
    if (!done) return;
    await this.serial(id, async () => {
      const cur = await this.load(id);
      if (!cur?.wake || cur.generation !== generation) return;
      for (const [path, tail] of Object.entries(cur.wake.tails)) {
        const l = cur.links[path];
        if (l) l.acked = Math.max(l.acked, tail);
      }
      cur.wake = null;
      cur.status = 'active';
      await this.save(cur);
      await this.wake(cur);
    });
  }

  private claim(res: ServerResponse, id: string, input: Record<string, unknown>): Promise<void> {
    const worker = typeof input.worker === 'string' && input.worker ? input.worker : 'worker';
    return this.serial(id, async () => {
      const s = await this.load(id);
      if (!s) throw new SubError(404, 'NOT_FOUND');
      if (s.wake?.holder && s.wake.leaseUntil > Date.now())
        throw new SubError(409, 'ALREADY_CLAIMED', { current_holder: s.wake.holder, generation: s.generation });
      if (s.wake && s.wake.leaseUntil <= Date.now()) s.wake = null;
      if (!s.wake) await this.wake(s);
      if (!s.wake) return json(res, 204);
      s.wake.holder = worker;
      s.wake.leaseUntil = Date.now() + s.config.lease_ttl_ms;
      await this.save(s);
      const streams = (await this.snapshot(s)).map(({ tail: _, ...x }) => x);
      json(res, 200, { wake_id: s.wake.id, generation: s.generation, token: s.wake.token, streams, lease_ttl_ms: s.config.lease_ttl_ms });
    });
  }

  /** callback (webhook), ack (pull-wake) and release: fenced by token, generation and wake id. */
  private settle(
    req: IncomingMessage,
    res: ServerResponse,
    id: string,
    input: Record<string, unknown>,
    action: 'callback' | 'ack' | 'release',
  ): Promise<void> {
    const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    return this.serial(id, async () => {
      const s = await this.load(id);
      if (!s) throw new SubError(404, 'NOT_FOUND');
      const w = s.wake;
      if (!w || token !== w.token || input.generation !== s.generation || input.wake_id !== w.id || w.leaseUntil <= Date.now())
        throw new SubError(409, 'FENCED');
      if (action === 'release') {
        s.wake = null;
        await this.save(s);
        await this.wake(s);
        return json(res, 204);
      }
      const acks = Array.isArray(input.acks) ? (input.acks as { stream?: unknown; offset?: unknown }[]) : [];
      for (const a of acks) {
        const at = typeof a.offset === 'string' ? offsetPosition(a.offset) : null;
        const l = typeof a.stream === 'string' ? s.links[a.stream] : undefined;
        if (at === null || !l) throw new SubError(400, 'INVALID_REQUEST', { message: 'each ack names a linked stream and an offset' });
        l.acked = Math.max(l.acked, at);
      }
      if (input.done !== true) {
        w.leaseUntil = Date.now() + s.config.lease_ttl_ms;
        await this.save(s);
        return json(res, 200, { ok: true, next_wake: false });
      }
      s.wake = null;
      s.status = 'active';
      await this.save(s);
      const next = (await this.snapshot(s)).some((x) => x.has_pending);
      if (next) await this.wake(s);
      json(res, 200, { ok: true, next_wake: next });
    });
  }
}
