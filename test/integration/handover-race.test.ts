// The hand-over race: clients reconnect at random points while publishers run flat out; nothing lost, nothing repeated per connection.
import { globMatch } from '@durable-pubsub/client-sdk/protocol';
import { describe, expect, it } from 'vitest';
import { runPublisher, sleep, until, withServer } from '../support/env';
import { RawClient } from '../support/raw-client';

// A small catch-up buffer and replay page make overflow and multi-pass catch-ups happen often.
// Its clients ack every few ms: the frame-rate limit is not under test here.
const ctx = withServer({ DPS_CATCHUP_BUFFER: '50', DPS_REPLAY_PAGE: '64', DPS_MAX_FRAMES_PER_SEC: '100000' });

const CLIENTS = 50;
const TOTAL = 20_000;
const PATTERNS = [['race.*'], ['race.a'], ['race.[ab]', 'race.b'], ['*'], ['race.?', 'other']];

interface Conn {
  resumeFrom: number;
  ids: number[];
  reachedLive: boolean;
}

class Racer {
  readonly conns: Conn[] = [];
  epoch = '';
  /** the last id this client processed (what it would keep in localStorage) */
  cursor = 0;
  stopped = false;
  constructor(
    readonly n: number,
    readonly patterns: string[],
  ) {}
  /** half the clients send their own cursor, half rely on the stored position (and so must ack) */
  get usesCursor(): boolean {
    return this.n % 2 === 0;
  }

  async connectOnce(hold: number): Promise<void> {
    const c = await RawClient.connect(ctx.server.wsUrl);
    const hello = { recipient: `racer-${this.n}`, subs: this.patterns };
    const w = await c.hello(this.conns.length && this.usesCursor ? { ...hello, epoch: this.epoch, lastAckedId: this.cursor } : hello);
    this.epoch = w.epoch;
    const conn: Conn = { resumeFrom: w.resumeFrom, ids: [], reachedLive: false };
    this.conns.push(conn);
    let acked = 0;
    const pump = setInterval(() => {
      const ids = c.msgIds();
      if (ids.length) {
        conn.ids = ids;
        this.cursor = ids[ids.length - 1] as number;
      }
      conn.reachedLive ||= c.frames.some((f) => f.op === 'live');
      if (!this.usesCursor && this.cursor > acked) {
        c.send({ op: 'ack', id: this.cursor });
        acked = this.cursor;
      }
    }, 5);
    await sleep(hold);
    clearInterval(pump);
    const ids = c.msgIds();
    conn.ids = ids;
    if (ids.length) this.cursor = ids[ids.length - 1] as number;
    conn.reachedLive ||= c.frames.some((f) => f.op === 'live');
    if (!this.usesCursor && this.cursor > acked) {
      c.send({ op: 'ack', id: this.cursor });
      await sleep(20);
    }
    if (Math.random() < 0.5) c.terminate();
    else c.close();
  }

  async run(): Promise<void> {
    while (!this.stopped) {
      // Short holds cut connections during their catch-up; longer ones let them go live first.
      await this.connectOnce(Math.random() < 0.4 ? Math.random() * 15 : 20 + Math.random() * 250);
      await sleep(Math.random() * 40);
    }
  }
}

describe('hand-over race', () => {
  it(`${CLIENTS} clients reconnecting at random points while ${TOTAL} messages are published: exact coverage, strictly increasing`, async () => {
    const racers = Array.from({ length: CLIENTS }, (_, n) => new Racer(n, PATTERNS[n % PATTERNS.length] as string[]));
    for (const r of racers) await r.connectOnce(5); // each recipient exists and starts at the head before publishing
    const startHead = Math.max(...racers.map((r) => r.conns[0]?.resumeFrom ?? 0));
    expect(startHead).toBe(0);

    const pub = runPublisher(ctx.server.url, TOTAL, ['race.a', 'race.b', 'race.c', 'other', 'zzz'], { batch: 5, concurrency: 3 });
    const running = racers.map((r) => r.run());
    const { published } = await pub.done;
    for (const r of racers) r.stopped = true;
    await Promise.all(running);
    const head = published[published.length - 1]?.[0] as number;
    expect(published.map(([id]) => id)).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));

    let connections = 0;
    let handovers = 0;
    for (const r of racers) {
      // A last connection that stays until it has everything.
      const c = await RawClient.connect(ctx.server.wsUrl);
      const w = await c.hello({
        recipient: `racer-${r.n}`,
        subs: r.patterns,
        ...(r.usesCursor ? { epoch: r.epoch, lastAckedId: r.cursor } : {}),
      });
      const expected = published.filter(([, ch]) => r.patterns.some((p) => globMatch(p, ch))).map(([id]) => id);
      await c.next('live');
      await until(() => c.lastId() >= (expected[expected.length - 1] as number) || c.msgIds().length === 0, 10_000, 'the last connection');
      r.conns.push({ resumeFrom: w.resumeFrom, ids: c.msgIds(), reachedLive: true });
      c.close();

      const union = new Set<number>();
      for (const conn of r.conns) {
        // Per connection: strictly increasing, and all after its resume point.
        for (let i = 0; i < conn.ids.length; i++) {
          const prev = i === 0 ? conn.resumeFrom : (conn.ids[i - 1] as number);
          if (!((conn.ids[i] as number) > prev)) expect.fail(`racer ${r.n}: id ${conn.ids[i]} after ${prev}`);
        }
        for (const id of conn.ids) union.add(id);
      }
      expect([...union].sort((a, b) => a - b)).toEqual(expected);
      connections += r.conns.length;
      handovers += r.conns.filter((c) => c.reachedLive && c.ids.length).length;
    }
    expect(head).toBe(TOTAL);
    process.stdout.write(`hand-over race: ${connections} connections, ${handovers} reached live with messages\n`);
    // Exact coverage, not speed: inside the full suite on 2 cores this has taken 42 s, so it gets room.
  }, 180_000);
});
