// The Durable Streams layout in Redis (includes/ds.lua): typed callers of the ds* scripts, reached through the Store.
import type { Redis } from 'ioredis';
import type { Keys } from '../redis/keys';
import { defineScripts, type ScriptedRedis } from '../redis/scripts';

export interface StreamConfig {
  /** content type, lowercased; '' (forks only): the source's */
  ct: string;
  ttl?: number;
  expAt?: string;
  expMs?: number;
  closed: boolean;
  fork?: { src: string; offset?: number; sub?: number };
}

export type CreateStatus =
  | 'created'
  | 'exists'
  | 'conflict'
  | 'gone'
  | 'no-source'
  | 'source-gone'
  | 'bad-offset'
  | 'bad-sub'
  | 'ct-mismatch';

export interface CreateResult {
  status: CreateStatus;
  tail: number;
  closed: boolean;
  ct: string;
}

export interface Producer {
  id: string;
  epoch: number;
  seq: number;
}

export type AppendStatus =
  | 'ok'
  | 'missing'
  | 'gone'
  | 'closed'
  | 'closed-ok'
  | 'ct-mismatch'
  | 'seq-conflict'
  | 'dup'
  | 'stale'
  | 'epoch-seq'
  | 'gap';

export interface AppendResult {
  status: AppendStatus;
  tail: number;
  closed: boolean;
  /** dup: the producer's last seq; stale: its epoch; gap: the expected seq */
  a: number;
  /** gap: the received seq */
  b: number;
}

export interface StreamMeta {
  ct: string;
  tail: number;
  closed: boolean;
  /** unique per stream ever created in this namespace (ETags) */
  id: string;
  ttl?: number;
  expAt?: string;
}

export type ReadResult =
  | { status: 'missing' | 'gone' | 'bad-offset' }
  | { status: 'ok'; meta: StreamMeta; from: number; entries: { start: number; data: Buffer }[] };

export class Streams {
  readonly #r: ScriptedRedis;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
  ) {
    this.#r = defineScripts(redis);
  }

  private meta(path: string): string {
    return `${this.keys.streamPrefix}m:${path}`;
  }

  /** dscreate-1.lua: `entries` is the initial data (JSON streams: one message each). */
  async create(path: string, c: StreamConfig, entries: Buffer[], json: boolean): Promise<CreateResult> {
    const f = c.fork;
    const r = await this.#r.dpsDscreate(
      this.meta(path),
      this.keys.streamPrefix,
      path,
      c.ct,
      c.ttl ?? '',
      c.expAt ?? '',
      c.expMs ?? '',
      c.closed ? '1' : '0',
      f?.src ?? '',
      f?.offset ?? '',
      f?.sub ?? '',
      json ? '1' : '0',
      ...entries,
    );
    return { status: r[0] as CreateStatus, tail: Number(r[1]), closed: String(r[2]) === '1', ct: String(r[3]) };
  }

  /** dsappend-1.lua: appends `entries` (none: a close-only request) with every check at once. */
  async append(
    path: string,
    a: { ct: string; close: boolean; seq?: string; producer?: Producer; entries: Buffer[] },
  ): Promise<AppendResult> {
    const p = a.producer;
    const r = await this.#r.dpsDsappend(
      this.meta(path),
      this.keys.streamPrefix,
      path,
      a.ct,
      a.close ? '1' : '0',
      a.seq ?? '',
      p?.id ?? '',
      p?.epoch ?? 0,
      p?.seq ?? 0,
      ...a.entries,
    );
    return { status: r[0] as AppendStatus, tail: Number(r[1]), closed: String(r[2]) === '1', a: Number(r[3]), b: Number(r[4]) };
  }

  /** dsread-1.lua: the meta, and entries from `from` on up to about `maxBytes` (0: the meta alone). */
  async read(path: string, from: number | 'now', maxBytes: number, touch: boolean): Promise<ReadResult> {
    const r = await this.#r.dpsDsreadBuffer(this.meta(path), this.keys.streamPrefix, path, from, maxBytes, touch ? '1' : '0');
    const status = String(r[0]);
    if (status !== 'ok') return { status: status as 'missing' | 'gone' | 'bad-offset' };
    const text = (i: number) => String(r[i]);
    const ttl = text(5);
    const expAt = text(6);
    const meta: StreamMeta = {
      ct: text(1),
      tail: Number(text(2)),
      closed: text(3) === '1',
      id: text(4),
      ...(ttl ? { ttl: Number(ttl) } : {}),
      ...(expAt ? { expAt } : {}),
    };
    const entries: { start: number; data: Buffer }[] = [];
    for (let i = 9; i < r.length; i++) {
      const e = r[i] as Buffer;
      entries.push({ start: Number(e.subarray(0, 16).toString('latin1')), data: e.subarray(16) });
    }
    return { status: 'ok', meta, from: Number(text(8)), entries };
  }

  /** dsdelete-1.lua */
  async delete(path: string): Promise<'deleted' | 'missing' | 'gone'> {
    return (await this.#r.dpsDsdelete(this.meta(path), this.keys.streamPrefix, path)) as 'deleted' | 'missing' | 'gone';
  }
}
