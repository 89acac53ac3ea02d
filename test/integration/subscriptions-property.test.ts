// Property: random recipients, pattern sets, connections, acks, disconnects, forgets and janitor passes; every
// connection's messages plus its gaps cover exactly what it wanted, and nothing a set has not acked is trimmed
// unless retention removed it.
import { globMatch } from '@durable-pubsub/client-sdk/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { httpPublish, until, withServer } from '../support/env';
import { type Frame, RawClient } from '../support/raw-client';

const MAX_LEN = 6;
const ctx = withServer({ DPS_RETENTION_MAX_LEN: String(MAX_LEN) });

const SETS = [['a.*'], ['b.*'], ['a.*', 'b.*'], ['a.x']];
const CHANNELS = ['a.x', 'a.y', 'b.x'];
const RECIPIENTS = ['u1', 'u2'];

type Op =
  | { op: 'open'; r: number; set: number; own: boolean }
  | { op: 'publish'; ch: number; n: number }
  | { op: 'ack'; conn: number }
  | { op: 'close'; conn: number }
  | { op: 'janitor' }
  | { op: 'forget'; r: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('open' as const), r: fc.nat(1), set: fc.nat(SETS.length - 1), own: fc.boolean() }) },
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant('publish' as const), ch: fc.nat(CHANNELS.length - 1), n: fc.integer({ min: 1, max: 4 }) }),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('ack' as const), conn: fc.nat(2) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('close' as const), conn: fc.nat(2) }) },
  { weight: 2, arbitrary: fc.constant({ op: 'janitor' as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('forget' as const), r: fc.nat(1) }) },
);

interface Conn {
  c: RawClient;
  recipient: string;
  set: number;
  patterns: string[];
  conn: string;
  epoch: string;
  resumeFrom: number;
  acked: number;
}

/** One run: its own recipients and channels (prefixed), a model of the positions, and the messages it published. */
class Run {
  readonly open: Conn[] = [];
  /** recipient -> set index -> position, as PROTOCOL.md says the server keeps them */
  readonly positions = new Map<string, Map<number, number>>();
  /** (recipient, set) -> the position a client kept when its connection closed (what the SDK sends back) */
  readonly kept = new Map<string, { epoch: string; lastAckedId: number }>();
  /** channel -> ids published on it */
  readonly published = new Map<string, number[]>();
  /** channel -> the highest floor it had at a janitor pass: what was acked by every matching set then may be gone */
  private readonly trimmable = new Map<string, number>();

  constructor(readonly p: string) {}

  name(r: number): string {
    return `${this.p}-${RECIPIENTS[r]}`;
  }

  patterns(set: number): string[] {
    return (SETS[set] as string[]).map((s) => `${this.p}.${s}`);
  }

  private newest(recipient: string): number | undefined {
    const m = this.positions.get(recipient);
    return m?.size ? Math.max(...m.values()) : undefined;
  }

  private setKey(set: number): string {
    return JSON.stringify([...this.patterns(set)].sort());
  }

  private async stored(recipient: string, set: number): Promise<number | null> {
    const v = await ctx.redis.client.zscore(`dps:{default}:pset:${this.setKey(set)}`, recipient);
    return v === null ? null : Number(v);
  }

  async apply(o: Op): Promise<void> {
    if (o.op === 'open') return this.openConn(o.r, o.set, o.own);
    if (o.op === 'publish') return this.publish(o.ch, o.n);
    if (o.op === 'ack') return this.ack(o.conn);
    if (o.op === 'close') return this.close(o.conn);
    if (o.op === 'janitor') return this.janitor();
    const name = this.name(o.r);
    await fetch(`${ctx.server.url}/v1/recipients/${encodeURIComponent(name)}`, { method: 'DELETE' });
    this.positions.delete(name);
  }

  private async openConn(r: number, set: number, own: boolean): Promise<void> {
    if (this.open.length >= 3) return;
    const recipient = this.name(r);
    const patterns = this.patterns(set);
    const kept = own ? this.kept.get(`${recipient}|${set}`) : undefined;
    const c = await RawClient.connect(ctx.server.wsUrl);
    const w = await c.hello({ recipient, subs: patterns, ...kept });
    const positions = this.positions.get(recipient) ?? new Map<number, number>();
    const stored = positions.get(set);
    const newest = this.newest(recipient);
    const resume = kept ? Math.min(kept.lastAckedId, w.head) : (stored ?? newest ?? w.head);
    expect(w.resumeFrom, `resumeFrom of ${recipient} ${patterns}`).toBe(resume);
    positions.set(set, Math.max(stored ?? resume, resume));
    this.positions.set(recipient, positions);
    await c.next('live');
    this.open.push({ c, recipient, set, patterns, conn: w.conn, epoch: w.epoch, resumeFrom: w.resumeFrom, acked: w.resumeFrom });
  }

  private async publish(ch: number, n: number): Promise<void> {
    const channel = `${this.p}.${CHANNELS[ch]}`;
    const { body } = await httpPublish(ctx.server, { messages: Array.from({ length: n }, (_, i) => ({ ch: channel, data: i })) });
    this.published.set(channel, [...(this.published.get(channel) ?? []), ...body.ids]);
    const last = body.ids[body.ids.length - 1];
    for (const k of this.open)
      if (k.patterns.some((p) => globMatch(p, channel))) await k.c.waitFor((f) => f.id === last, 5000, `live ${last}`);
  }

  private async ack(i: number): Promise<void> {
    const k = this.open[i];
    if (!k || k.c.lastId() <= k.acked) return;
    k.acked = k.c.lastId();
    k.c.send({ op: 'ack', id: k.acked });
    const positions = this.positions.get(k.recipient);
    const stored = positions?.get(k.set);
    if (stored === undefined) return; // forgotten: its acks do not re-create it
    positions?.set(k.set, Math.max(stored, k.acked));
    const want = positions?.get(k.set);
    await until(async () => (await this.stored(k.recipient, k.set)) === want, 5000, 'the ack stored');
  }

  private async close(i: number): Promise<void> {
    const k = this.open[i];
    if (!k) return;
    this.open.splice(i, 1);
    this.check(k);
    k.c.close();
    await until(() => ![...ctx.server.sessions].some((s) => s.conn === k.conn), 5000, 'the session gone');
    this.kept.set(`${k.recipient}|${k.set}`, { epoch: k.epoch, lastAckedId: k.acked });
  }

  /** Nothing is gone that every matching set had not acked, unless retention (the length cap) removed it. */
  private async janitor(): Promise<void> {
    await ctx.server.janitor.runOnce(true);
    for (const [channel, ids] of this.published) {
      let floor = -1;
      for (const [, sets] of this.positions)
        for (const [set, pos] of sets)
          if (this.patterns(set).some((p) => globMatch(p, channel))) floor = floor === -1 ? pos : Math.min(floor, pos);
      floor = Math.max(floor, this.trimmable.get(channel) ?? -1);
      this.trimmable.set(channel, floor);
      const stored = new Set(
        (await ctx.redis.client.zrangebyscore(`dps:{default}:ch:${channel}`, '-inf', '+inf')).map((f) => JSON.parse(f).id as number),
      );
      const newestKept = new Set(ids.slice(-MAX_LEN));
      const wrongly = ids.filter((id) => !stored.has(id) && id > floor && newestKept.has(id));
      expect(wrongly, `removed from ${channel} though not acked by every matching set (floor ${floor})`).toEqual([]);
    }
  }

  /** The connection's messages and gaps cover exactly what it wanted after its resume point, in order, once. */
  check(k: Conn): void {
    const frames = k.c.frames.slice(1) as Frame[];
    const got = frames.filter((f) => f.op === 'msg').map((f) => f.id as number);
    const gaps = frames.filter((f) => f.op === 'gap');
    expect(got, 'strictly increasing').toEqual([...new Set(got)].sort((a, b) => a - b));
    const wanted: number[] = [];
    for (const [channel, ids] of this.published)
      if (k.patterns.some((p) => globMatch(p, channel))) for (const id of ids) if (id > k.resumeFrom) wanted.push(id);
    wanted.sort((a, b) => a - b);
    const chOf = new Map<number, string>();
    for (const [channel, ids] of this.published) for (const id of ids) chOf.set(id, channel);
    const covered = (id: number) => gaps.some((g) => g.ch === chOf.get(id) && g.after < id && id <= g.upTo);
    expect(
      wanted.filter((id) => !got.includes(id) && !covered(id)),
      `wanted by ${k.recipient} ${k.patterns} after ${k.resumeFrom}: neither delivered nor in a gap`,
    ).toEqual([]);
    expect(got.filter((id) => !wanted.includes(id) || covered(id))).toEqual([]);
    for (const g of gaps) expect(g.after).toBeGreaterThanOrEqual(k.resumeFrom);
  }

  async end(): Promise<void> {
    for (const k of this.open) this.check(k);
    for (const k of this.open) k.c.close();
  }
}

describe('subscriptions under random use', () => {
  it('cover exactly what each connection wanted, and trim only what every set acked or retention removed', async () => {
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 6, maxLength: 30 }), async (ops) => {
        const run = new Run(`p${++round}`);
        try {
          for (const o of ops) await run.apply(o);
          await run.end();
        } finally {
          for (const k of run.open) k.c.close();
        }
      }),
      { numRuns: 120 },
    );
  });
});
