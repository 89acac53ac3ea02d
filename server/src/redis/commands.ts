// A typed caller per Lua script: named arguments in, named results out, keys from `Keys`, negative codes mapped (codes.ts).

import { isValidChannel } from '@durable-pubsub/client-sdk/protocol';
import type { Redis } from 'ioredis';
import { nanoid } from 'nanoid';
import type {
  AppendResult,
  AppendStatus,
  CreateResult,
  CreateStatus,
  Producer,
  ReadResult,
  StreamConfig,
  StreamMeta,
} from '../streams/types';
import { refusalOf } from './codes';
import type { Keys } from './keys';
import { defineScripts, type ScriptedRedis } from './scripts';

/** How live frames travel in a namespace: PUBLISH/PSUBSCRIBE per channel, or SPUBLISH/SSUBSCRIBE of one shard channel (Redis >= 7). */
export type PubsubMode = 'classic' | 'sharded';

export type RecoverOutcome = 'same' | 'new' | 'restarted' | 'kept' | 'reset';

export interface HelloResult {
  epoch: string;
  head: number;
  resumeFrom: number;
  epochChanged: boolean;
  /** the stored position of the recipient's pattern set after this hello */
  acked: number;
}

export type AckOutcome = { status: 'stored'; position: number } | { status: 'epoch-gone' } | { status: 'forgotten' };

export type PlaceOutcome = { status: 'placed'; position: number; existed: boolean } | { status: 'forgotten' };

/** One message of a publish batch. */
export interface Outgoing {
  ch: string;
  /** JSON text */
  data: string;
  key: string | undefined;
}

export interface PublishReply {
  epoch: string;
  /** the stored messages have consecutive ids from this one on, in batch order */
  first: number;
  /** messages (by index in the batch) whose idempotency key was used already: they stored nothing, and had this id */
  repeated: Map<number, number>;
}

export interface Ack {
  recipient: string;
  setKey: string;
  id: number;
  /** the epoch the acking connection lives in */
  epoch: string;
}

export class Scripts {
  readonly #r: ScriptedRedis;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
  ) {
    this.#r = defineScripts(redis);
  }

  /** publishmany-n.lua. `deadline`: ms on Redis's clock past which nothing is done (0: none). */
  async publishmany(a: { messages: readonly Outgoing[]; deadline: number; maxLen: number; idemWindowSec: number }): Promise<PublishReply> {
    const k = this.keys;
    // Each channel once (its key, name and JSON literal), then the messages' layout ("j n " per message) in one
    // argument and their data one argument each: ioredis costs ~0.5 µs of this process's CPU per argument. (All the
    // data in one argument too made Redis, the limit of large batches, ~15 % slower: a string.sub per message.)
    const channelNo = new Map<string, number>();
    const chKeys: string[] = [];
    const chArgs: string[] = [];
    const idemKeys: string[] = [];
    let layout = '';
    const data: string[] = [];
    for (const m of a.messages) {
      let j = channelNo.get(m.ch);
      if (j === undefined) {
        j = chKeys.length;
        channelNo.set(m.ch, j);
        chKeys.push(k.channel(m.ch));
        chArgs.push(m.ch, JSON.stringify(m.ch));
      }
      if (m.key !== undefined) idemKeys.push(k.idem(m.key));
      layout += `${j} ${m.key === undefined ? 0 : idemKeys.length} `;
      data.push(m.data);
    }
    // The script reads the pub/sub mode from the config (KEYS[5]) itself: it is the namespace's, not this node's.
    const keys = [k.seq, k.epoch, k.index, k.trimmed, k.config, ...chKeys, ...idemKeys];
    const head = [a.deadline, a.maxLen, a.idemWindowSec, nanoid(), k.livePrefix, k.liveShard, chKeys.length];
    const reply = await this.#r.dpsPublishmany(keys.length, ...keys, ...head, ...chArgs, layout, ...data);
    const repeated = new Map<number, number>();
    for (let p = 2; p < reply.length; p += 2) repeated.set(reply[p] as number, reply[p + 1] as number);
    return { epoch: reply[0], first: reply[1], repeated };
  }

  /**
   * pubsubmode-1.lua: the namespace's pub/sub mode ('' when it has none yet); `init` sets it if it has none, `set`
   * switches it (a marker on the old path tells the nodes). Answers the mode in force.
   */
  async pubsubMode(op: 'get' | 'init' | 'set', mode: PubsubMode | '' = ''): Promise<PubsubMode | ''> {
    const k = this.keys;
    return (await this.#r.dpsPubsubmode(k.config, op, mode, k.modeChannel, k.liveShard)) as PubsubMode | '';
  }

  /** hello-6.lua: registers (recipient, set) and decides where its replay starts. */
  async hello(a: { recipient: string; setKey: string; epoch?: string; lastAckedId?: number; from?: string }): Promise<HelloResult> {
    const k = this.keys;
    const [epoch, head, resumeFrom, changed, acked] = await this.#r.dpsHello(
      k.epoch,
      k.seq,
      k.recipient(a.recipient),
      k.recipients,
      k.floors,
      k.subs,
      nanoid(),
      a.recipient,
      a.setKey,
      a.epoch ?? '',
      a.lastAckedId ?? '',
      a.from ?? 'head',
      k.psetPrefix,
    );
    return { epoch, head, resumeFrom, epochChanged: changed === 1, acked };
  }

  /** ackmany-n.lua: the outcome of each ack, in order. */
  async ackmany(acks: readonly Ack[]): Promise<AckOutcome[]> {
    const k = this.keys;
    const keys = [k.epoch, k.recipients, k.floors, k.subs];
    const args: (string | number)[] = [k.psetPrefix];
    for (const a of acks) {
      keys.push(k.recipient(a.recipient));
      args.push(a.epoch, a.recipient, a.setKey, a.id);
    }
    const stored = await this.#r.dpsAckmany(keys.length, ...keys, ...args);
    return stored.map((position) =>
      position >= 0 ? { status: 'stored', position } : refusalOf('ackmany', position, ['epoch-gone', 'forgotten'] as const),
    );
  }

  /** place-4.lua: puts a recipient on a set (`create`: an import, which creates it or moves its position forward). */
  async place(a: { recipient: string; setKey: string; position: number; create: boolean }): Promise<PlaceOutcome> {
    const k = this.keys;
    const [position, existed] = await this.#r.dpsPlace(
      k.recipient(a.recipient),
      k.recipients,
      k.floors,
      k.subs,
      k.psetPrefix,
      a.recipient,
      a.setKey,
      a.position,
      a.create ? '1' : '',
    );
    if (position < 0) return refusalOf('place', position, ['forgotten'] as const);
    return { status: 'placed', position, existed: existed === 1 };
  }

  /** forget-4.lua: one set of a recipient (no `setKey`: all of them). What went, if anything. */
  async forget(a: { recipient: string; setKey?: string }): Promise<'recipient' | 'set' | null> {
    const k = this.keys;
    const r = await this.#r.dpsForget(k.recipients, k.recipient(a.recipient), k.floors, k.subs, k.psetPrefix, a.recipient, a.setKey ?? '');
    return r === 2 ? 'recipient' : r === 1 ? 'set' : null;
  }

  /** floors-3.lua: the floors that changed since `reader` last took them, or all ('' : all, taking nothing). */
  async floors(a: { reader: string }): Promise<{ all: boolean; floors: Map<string, number | null> }> {
    const k = this.keys;
    const [which, ...flat] = await this.#r.dpsFloors(k.floors, k.floorsChanged, k.floorsReader, a.reader);
    const floors = new Map<string, number | null>();
    for (let i = 0; i < flat.length; i += 2) floors.set(flat[i] as string, flat[i + 1] == null ? null : Number(flat[i + 1]));
    return { all: which === 'all', floors };
  }

  /** migrate-4.lua: converts one layout-1 recipient (its `patterns` as stored) to its set `setKey`; whether it did. */
  async migrate(a: { recipient: string; patterns: string; setKey: string }): Promise<boolean> {
    const k = this.keys;
    const r = await this.#r.dpsMigrate(
      k.recipient(a.recipient),
      k.recipients,
      k.floors,
      k.subs,
      k.psetPrefix,
      a.recipient,
      a.patterns,
      a.setKey,
    );
    return r === 1;
  }

  /** read-2.lua: after < id <= upTo, at most `limit`, with the watermark; payloads are the stored frames, never decoded. */
  async read(a: {
    ch: string;
    after: number;
    upTo: number;
    limit: number;
  }): Promise<{ watermark: number; ids: number[]; payloads: Buffer[] }> {
    const k = this.keys;
    const reply = await this.#r.dpsReadBuffer(k.channel(a.ch), k.trimmed, a.ch, a.after, a.upTo, a.limit);
    const ids: number[] = [];
    const payloads: Buffer[] = [];
    for (let i = 1; i < reply.length; i += 2) {
      payloads.push(reply[i] as Buffer);
      ids.push(Number((reply[i + 1] as Buffer).toString('latin1')));
    }
    return { watermark: Number(reply[0]), ids, payloads };
  }

  /** trim-3.lua: ids <= ackFloor (-1: keep), ids <= ageCut (-1: none), then the length cap. How many went, and why. */
  async trim(a: { ch: string; ackFloor: number; ageCut: number; maxLen: number }): Promise<{ acked: number; retained: number }> {
    const k = this.keys;
    const [acked, retained] = await this.#r.dpsTrim(k.channel(a.ch), k.trimmed, k.index, a.ch, a.ackFloor, a.ageCut, a.maxLen);
    return { acked, retained };
  }

  /** recover-3.lua: 'check' which server holds the log, or apply the caller's decision on a restart of `runId`. */
  async recover(
    a: { decision: 'check' } | { decision: 'keep' | 'reset'; runId: string },
  ): Promise<{ epoch: string; outcome: RecoverOutcome; runId: string; head: number }> {
    const k = this.keys;
    const runId = a.decision === 'check' ? '' : a.runId;
    const [epoch, outcome, server, head] = await this.#r.dpsRecover(k.epoch, k.server, k.seq, nanoid(), a.decision, runId);
    return { epoch, outcome: outcome as RecoverOutcome, runId: server, head };
  }

  /** clock-1.lua: Redis's clock on the namespace's node, in ms (with its microseconds). */
  async clock(): Promise<number> {
    const [sec, usec] = await this.#r.dpsClock(this.keys.epoch);
    return Number(sec) * 1000 + Number(usec) / 1000;
  }

  /** The meta key of a Durable Stream (its other keys are built beside it in Lua: includes/ds.lua). */
  private streamMeta(path: string): string {
    return `${this.keys.streamPrefix}m:${path}`;
  }

  /** dscreate-1.lua */
  async dscreate(a: { path: string; config: StreamConfig; entries: Buffer[] }): Promise<CreateResult> {
    const { config: c, path } = a;
    const f = c.fork;
    const r = await this.#r.dpsDscreate(
      this.streamMeta(path),
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
      ...a.entries,
    );
    return { status: r[0] as CreateStatus, tail: Number(r[1]), closed: String(r[2]) === '1', ct: String(r[3]) };
  }

  /** dsappend-7.lua: a JSON stream whose path is a channel stores its messages on that channel in the same call. */
  async dsappend(a: {
    path: string;
    ct: string;
    close: boolean;
    seq?: string;
    producer?: Producer;
    entries: Buffer[];
    /** max messages kept per channel (retention by length) */
    maxLen: number;
  }): Promise<AppendResult> {
    const p = a.producer;
    const k = this.keys;
    const r = await this.#r.dpsDsappend(
      this.streamMeta(a.path),
      k.seq,
      k.epoch,
      k.index,
      k.trimmed,
      k.config,
      k.channel(a.path),
      k.streamPrefix,
      a.path,
      a.ct,
      a.close ? '1' : '0',
      a.seq ?? '',
      p?.id ?? '',
      p?.epoch ?? 0,
      p?.seq ?? 0,
      a.maxLen,
      nanoid(),
      k.livePrefix,
      k.liveShard,
      isValidChannel(a.path) ? JSON.stringify(a.path) : '',
      ...a.entries,
    );
    const out: AppendResult = {
      status: r[0] as AppendStatus,
      tail: Number(r[1]),
      closed: String(r[2]) === '1',
      a: Number(r[3]),
      b: Number(r[4]),
    };
    if (r.length > 5) out.channel = { epoch: String(r[5]), first: Number(r[6]) };
    return out;
  }

  /** dsread-1.lua: entries come back with their 16-digit start offset cut off. */
  async dsread(a: { path: string; from: number | 'now'; maxBytes: number; touch: boolean }): Promise<ReadResult> {
    const r = await this.#r.dpsDsreadBuffer(
      this.streamMeta(a.path),
      this.keys.streamPrefix,
      a.path,
      a.from,
      a.maxBytes,
      a.touch ? '1' : '0',
    );
    const text = (i: number) => String(r[i]);
    const status = text(0);
    if (status !== 'ok') return { status: status as 'missing' | 'gone' | 'bad-offset' };
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
  async dsdelete(a: { path: string }): Promise<'deleted' | 'missing' | 'gone'> {
    return (await this.#r.dpsDsdelete(this.streamMeta(a.path), this.keys.streamPrefix, a.path)) as 'deleted' | 'missing' | 'gone';
  }
}
