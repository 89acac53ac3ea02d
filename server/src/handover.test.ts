// The hand-over driven through each interleaving that matters, step by step: a fake socket, a real store on a real Redis.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameChecks, HandOver, type HandOverHost, type Outlet } from './handover';
import { Interest } from './interest';
import { type ManagedRedis, startRedis } from './redis/managed';
import { defineScripts } from './redis/scripts';
import { ReadAhead } from './replay';
import type { SessionState } from './session-state';
import { type Chunk, Store } from './store';
import { MsgsCache, payloadOf } from './wire';

let redis: ManagedRedis;
let client: Redis;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'dps-handover-'));
  redis = await startRedis({ dataDir, appendonly: false });
  client = new Redis(redis.url, { maxRetriesPerRequest: null });
});
afterAll(async () => {
  client?.disconnect();
  await redis?.kill();
  rmSync(dataDir, { recursive: true, force: true });
});

/** A socket that records what is written, one entry per frame, and holds its send buffer until told to drain. */
class FakeSocket implements Outlet {
  open = true;
  buffered = 0;
  readonly frames: string[] = [];
  private drains: (() => void)[] = [];
  /** called after each write, with the frames written so far (to act in the middle of a pass) */
  onWrite?: () => void;

  sendText(text: string): void {
    if (!this.open) return;
    this.frames.push(text);
    this.onWrite?.();
  }

  writeFrames(bytes: Buffer): void {
    if (!this.open) return;
    for (let at = 0; at < bytes.length; ) {
      const frame = bytes.subarray(at);
      const len = (frame[1] as number) & 0x7f;
      const start = len < 126 ? 2 : len === 126 ? 4 : 10;
      const size = len < 126 ? len : len === 126 ? frame.readUInt16BE(2) : frame.readUInt32BE(6);
      this.frames.push(payloadOf(frame).subarray(0, size).toString('utf8'));
      at += start + size;
    }
    this.onWrite?.();
  }

  burst(): void {}
  cork(): void {}
  uncork(): void {}

  writable(): Promise<void> {
    if (!this.open || this.buffered <= HIGH_WATER) return Promise.resolve();
    return new Promise((resolve) => this.drains.push(resolve));
  }

  /** The reader took everything. */
  drain(): void {
    this.buffered = 0;
    const d = this.drains;
    this.drains = [];
    for (const r of d) r();
  }

  /** What the client saw: msg ids (msgs frames unpacked), `gap ch after-upTo reason`, `live id`. */
  seen(): string[] {
    return this.frames.flatMap((text) => {
      const f = JSON.parse(text);
      if (f.op === 'msg') return [String(f.id)];
      if (f.op === 'msgs') return f.msgs.map((m: { id: number }) => String(m.id));
      if (f.op === 'gap') return [`gap ${f.ch} ${f.after}-${f.upTo} ${f.reason}`];
      return [`${f.op} ${f.id}`];
    });
  }
}

const HIGH_WATER = 1000;

class FakeHost implements HandOverHost {
  state: SessionState = 'opening';
  readonly moves: string[] = [];
  readonly interest = new Interest();
  failed: unknown;

  constructor(patterns: string[]) {
    for (const p of patterns) this.interest.add(p, 0);
  }

  setState(next: 'catching-up' | 'live'): void {
    this.moves.push(`${this.state} -> ${next}`);
    this.state = next;
  }

  fail(err: unknown): void {
    this.failed = err;
    this.state = 'closed';
  }
}

interface Hooks {
  /** while the head read is on its way to Redis */
  beforeHead?: () => Promise<void> | void;
  /** once the head is read, before any page of the pass */
  afterHead?: (head: number) => Promise<void> | void;
}

let nsCount = 0;

/** One connection's stream over a fresh namespace, with hooks into the store reads of its passes. */
function setup(opts: { patterns?: string[]; catchUpBuffer?: number; replayPage?: number; batch?: boolean; checked?: boolean } = {}) {
  const store = new Store(defineScripts(client), { namespace: `ho${++nsCount}`, retentionMaxLen: 10_000, idempotencyWindowSec: 60 });
  const hooks: Hooks = {};
  let heads = 0;
  const gated = {
    async changedSince(after: number) {
      heads++;
      const read = store.changedSince(after);
      await hooks.beforeHead?.();
      const r = await read;
      await hooks.afterHead?.(r.head);
      return r;
    },
    readChunk: (ch: string, after: number, upTo: number, limit: number): Promise<Chunk> => store.readChunk(ch, after, upTo, limit),
  };
  let ready: Promise<void> = Promise.resolve();
  const bridge = { ready: () => ready };
  const socket = new FakeSocket();
  const host = new FakeHost(opts.patterns ?? ['a.*']);
  const stats = { deliveredLive: 0, replayed: 0, gaps: 0, slowFallbacks: 0 };
  const readAhead = new ReadAhead();
  const config = { catchUpBuffer: opts.catchUpBuffer ?? 100, replayPage: opts.replayPage ?? 100, sendHighWater: HIGH_WATER };
  const stream = new HandOver(
    { store: gated, bridge, config, stats, readAhead, msgs: new MsgsCache(), checks: new FrameChecks() },
    host,
    socket,
    {
      batch: opts.batch ?? false,
      checked: opts.checked ?? false,
    },
  );
  /** Stores a message; its live frame, as the bridge would offer it, is returned (not offered yet). */
  const publish = async (ch: string, data: unknown = 0) => {
    const { id } = await store.publish(ch, data as never);
    const chunk = await store.readChunk(ch, id - 1, id, 1);
    // A read kept may answer it: its frame is at the window's start.
    return { id, ch, offer: () => stream.offerLive(id, ch, chunk.frames[chunk.from ?? 0] as Buffer) };
  };
  const publishMany = async (ch: string, n: number) => {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await publish(ch, i));
    return out;
  };
  return {
    store,
    stream,
    /** starts the stream after `resumeFrom` with the head the hello script would have read now */
    start: async (resumeFrom = 0) => stream.start(resumeFrom, await store.head()),
    socket,
    host,
    hooks,
    stats,
    readAhead,
    publish,
    publishMany,
    heads: () => heads,
    holdBridge(): () => void {
      let release = () => {};
      ready = new Promise((r) => {
        release = r;
      });
      return () => {
        release();
        ready = Promise.resolve();
      };
    },
  };
}

const idsOf = (ms: { id: number }[]) => ms.map((m) => String(m.id));
/** Lets the stream run until it waits on something the test holds. */
const settle = () => new Promise((r) => setTimeout(r, 20));

describe('hand-over from replay to live', () => {
  it('goes live at once, without reading the store, when the hello head is the resume point', async () => {
    const t = setup();
    const before = await t.publishMany('a.x', 2);
    const head = before[1]?.id as number;
    await t.stream.start(head, head);
    const m = await t.publish('a.x');
    m.offer();
    expect(t.socket.seen()).toEqual([`live ${head}`, String(m.id)]);
    expect([t.heads(), t.host.moves]).toEqual([0, ['opening -> catching-up', 'catching-up -> live']]);
  });

  it('sends a live message offered before the head read once: from the store, not again from the buffer', async () => {
    const t = setup();
    const ms = await t.publishMany('a.x', 3);
    for (const m of ms) m.offer(); // buffered while opening
    await t.start();
    expect(t.socket.seen()).toEqual([...idsOf(ms), `live ${ms[2]?.id}`]);
    expect(t.heads()).toBe(1);
  });

  it('sends a message published before the head read and offered while it is on its way once', async () => {
    const t = setup();
    const ms = await t.publishMany('a.x', 3);
    t.hooks.beforeHead = () => ms[2]?.offer();
    await t.start();
    expect(t.socket.seen()).toEqual([...idsOf(ms), `live ${ms[2]?.id}`]);
  });

  it('sends messages published after the head read from the buffer, after the replay, in order', async () => {
    const t = setup();
    const old = await t.publishMany('a.x', 3);
    const later: { id: number; offer(): void }[] = [];
    t.hooks.afterHead = async () => {
      t.hooks.afterHead = undefined;
      for (const m of await t.publishMany('a.y', 2)) {
        later.push(m);
        m.offer();
      }
    };
    await t.start();
    expect(t.socket.seen()).toEqual([...idsOf(old), ...idsOf(later), `live ${later[1]?.id}`]);
    expect(t.heads()).toBe(1);
  });

  it('sends messages published while pages are being written once, after the replay', async () => {
    const t = setup({ replayPage: 2 });
    const old = await t.publishMany('a.x', 6);
    const later: { id: number; offer(): void }[] = [];
    t.socket.onWrite = () => {
      if (t.socket.frames.length !== 2) return;
      // After the first page the reader is slow: the pass waits, and two more are stored and offered meanwhile.
      t.socket.buffered = HIGH_WATER + 1;
      void t.publishMany('a.x', 2).then((ms) => {
        for (const m of ms) {
          later.push(m);
          m.offer();
        }
        t.socket.drain();
      });
    };
    await t.start();
    expect(later.length).toBe(2);
    expect(t.socket.seen()).toEqual([...idsOf(old), ...idsOf(later), `live ${later[1]?.id}`]);
  });

  it('reads the store again when the buffer overflows during a pass, and misses nothing', async () => {
    const t = setup({ catchUpBuffer: 3 });
    const old = await t.publishMany('a.x', 2);
    const later: { id: number; offer(): void }[] = [];
    t.hooks.afterHead = async () => {
      t.hooks.afterHead = undefined;
      for (const m of await t.publishMany('a.x', 5)) {
        later.push(m);
        m.offer(); // the fourth overflows the buffer: it is emptied and the pass will be followed by another
      }
    };
    await t.start();
    expect(t.socket.seen()).toEqual([...idsOf(old), ...idsOf(later), `live ${later[4]?.id}`]);
    expect(t.heads()).toBe(2);
  });

  it('reads the store again when the subscription is lost during a pass, and misses nothing', async () => {
    const t = setup();
    const old = await t.publishMany('a.x', 2);
    let lost: { id: number }[] = [];
    t.hooks.afterHead = async () => {
      t.hooks.afterHead = undefined;
      lost = await t.publishMany('a.x', 2); // never offered: the subscriber connection dropped them
      t.stream.liveLost();
    };
    await t.start();
    expect(t.socket.seen()).toEqual([...idsOf(old), ...idsOf(lost), `live ${lost[1]?.id}`]);
    expect(t.heads()).toBe(2);
  });

  it('catches up from the store when the subscription is lost while live, once it is back', async () => {
    const t = setup();
    await t.start();
    const release = t.holdBridge();
    const lost = await t.publishMany('a.x', 2);
    t.stream.liveLost();
    const next = await t.publish('a.x');
    next.offer(); // the bridge is back: buffered behind the catch-up
    await settle();
    expect([t.host.state, t.socket.seen()]).toEqual(['catching-up', ['live 0']]);
    release();
    await settle();
    expect(t.socket.seen()).toEqual(['live 0', ...idsOf(lost), String(next.id), `live ${next.id}`]);
    expect(t.host.moves).toEqual(['opening -> catching-up', 'catching-up -> live', 'live -> catching-up', 'catching-up -> live']);
  });

  it('serves a slow reader from the store, paced by its socket, without loss or repeat', async () => {
    const t = setup();
    await t.start();
    const first = await t.publish('a.x');
    first.offer();
    t.socket.buffered = HIGH_WATER + 1;
    const behind = await t.publishMany('a.x', 3);
    for (const m of behind) m.offer(); // the first of these sends the stream to the store; the rest are buffered
    await settle();
    expect([t.host.state, t.socket.seen(), t.stats.slowFallbacks]).toEqual(['catching-up', ['live 0', String(first.id)], 1]);
    t.socket.drain();
    await settle();
    expect(t.socket.seen()).toEqual(['live 0', String(first.id), ...idsOf(behind), `live ${behind[2]?.id}`]);
    expect(t.host.state).toBe('live');
  });

  it('reports a live message that is not valid JSON as a gap in its place, live and buffered', async () => {
    const t = setup();
    const before = await t.publish('a.x');
    before.offer();
    t.stream.offerGap(before.id + 1, 'a.x'); // while opening: held in order
    await t.start();
    t.stream.offerGap(before.id + 2, 'a.x');
    t.stream.offerGap(before.id + 3, 'b.x'); // not this connection's
    const id = before.id;
    expect(t.socket.seen()).toEqual([
      String(id),
      `gap a.x ${id}-${id + 1} invalid`,
      `live ${id + 1}`,
      `gap a.x ${id + 1}-${id + 2} invalid`,
    ]);
  });

  it('reports what retention removed as a gap, then the rest, in msgs frames for a batch client', async () => {
    const t = setup({ batch: true });
    const ms = await t.publishMany('a.x', 5);
    await t.store.trim('a.x', -1, ms[1]?.id as number);
    await t.start();
    const frames = t.socket.frames.map((f) => JSON.parse(f).op);
    expect(frames).toEqual(['gap', 'msgs', 'live']);
    expect(t.socket.seen()).toEqual([`gap a.x 0-${ms[1]?.id} retention`, ...idsOf(ms.slice(2)), `live ${ms[4]?.id}`]);
  });

  it('stops a pass when the connection closes, and gives back its share of the read-ahead', async () => {
    const t = setup({ replayPage: 2 });
    await t.publishMany('a.x', 6);
    t.socket.onWrite = () => {
      t.host.state = 'closed';
      t.socket.open = false;
    };
    await t.start();
    expect([t.socket.seen(), t.host.moves, t.readAhead.active]).toEqual([['1', '2'], ['opening -> catching-up'], 0]);
    const late = await t.publish('a.x');
    late.offer();
    expect(t.socket.seen()).toEqual(['1', '2']);
  });
});
