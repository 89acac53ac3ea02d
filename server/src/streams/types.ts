// Durable Streams: what a stream's config, and its scripts' outcomes, are (the ds*.lua scripts, redis/commands.ts).

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
  /** ok, a JSON stream whose path is a channel: the log's epoch and the id of the first message stored on the channel */
  channel?: { epoch: string; first: number };
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
