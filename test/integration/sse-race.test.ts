// The hand-over race over SSE: readers drop their stream at random points and resume (Last-Event-ID, ?lastEventId=, or an ack) while publishers run flat out; every message exactly once.
import { globMatch } from '@durable-pubsub/client-sdk/protocol';
import { describe, expect, it } from 'vitest';
import { runPublisher, sleep, until, withServer } from '../support/env';
import { SseReader } from '../support/sse-reader';

// A small catch-up buffer and replay page make overflow and multi-pass catch-ups happen often.
const ctx = withServer({ DPS_CATCHUP_BUFFER: '50', DPS_REPLAY_PAGE: '64' });

const CLIENTS = 21;
const TOTAL = 10_000;
const PATTERNS = [['race.*'], ['race.a'], ['race.[ab]', 'race.b'], ['*'], ['race.?', 'other'], ['zzz']];
/** how a reader resumes: the Last-Event-ID header, ?lastEventId= (a new EventSource), or the position stored by POST /v1/ack */
const MODES = ['header', 'query', 'ack'] as const;

interface Conn {
  resumeFrom: number;
  ids: number[];
  gaps: unknown[];
  reachedLive: boolean;
}

class Racer {
  readonly conns: Conn[] = [];
  epoch = '';
  /** the id of the last event this reader processed (what an EventSource would send as Last-Event-ID) */
  cursor = '';
  stopped = false;
  constructor(
    readonly n: number,
    readonly patterns: string[],
  ) {}

  get mode(): (typeof MODES)[number] {
    return MODES[this.n % MODES.length] as (typeof MODES)[number];
  }

  url(): string {
    const u = new URL('/v1/sse', ctx.server.url);
    u.searchParams.set('recipient', `racer-${this.n}`);
    for (const p of this.patterns) u.searchParams.append('subs', p);
    if (this.mode === 'query' && this.cursor) u.searchParams.set('lastEventId', this.cursor);
    return u.href;
  }

  /** One stream, read for `hold` ms (or until `done`), then dropped; returns it. */
  async connectOnce(hold: number, done?: (r: SseReader) => boolean): Promise<SseReader> {
    const r = await SseReader.open(this.url(), this.mode === 'header' && this.cursor ? { 'last-event-id': this.cursor } : {});
    if (r.status !== 200) throw new Error(`racer ${this.n}: ${r.status} ${JSON.stringify(r.refusal)}`);
    if (done)
      await until(() => done(r), 20_000, `racer ${this.n} to have everything`).catch((err) => {
        const s = r.summary();
        throw new Error(`${err.message}: cursor ${this.cursor}, ended ${r.ended}, ${s.length} events: ${s.slice(0, 5)} … ${s.slice(-5)}`);
      });
    else await sleep(hold);
    r.close(); // from here on nothing is added: what it read is what it processed
    const welcome = r.events[0];
    if (welcome) {
      this.epoch = welcome.data.epoch;
      this.conns.push({
        resumeFrom: welcome.data.resumeFrom,
        ids: r.msgIds(),
        gaps: r.events.filter((e) => e.event === 'gap').map((e) => e.data),
        reachedLive: r.events.some((e) => e.event === 'live'),
      });
    }
    if (r.lastEventId) this.cursor = r.lastEventId;
    if (this.mode === 'ack' && this.cursor) {
      const res = await fetch(`${ctx.server.url}/v1/ack`, {
        method: 'POST',
        body: JSON.stringify({ recipient: `racer-${this.n}`, subs: this.patterns, id: this.cursor }),
      });
      if (res.status !== 200) throw new Error(`racer ${this.n}: ack answered ${res.status}`);
    }
    return r;
  }

  async run(): Promise<void> {
    while (!this.stopped) {
      // Short holds cut streams during their catch-up; longer ones let them go live first.
      await this.connectOnce(Math.random() < 0.4 ? Math.random() * 15 : 20 + Math.random() * 200);
      await sleep(Math.random() * 40);
    }
  }
}

describe('hand-over race over SSE', () => {
  it(`${CLIENTS} readers dropping and resuming at random points while ${TOTAL} messages are published: each message exactly once, in order`, async () => {
    const racers = Array.from({ length: CLIENTS }, (_, n) => new Racer(n, PATTERNS[n % PATTERNS.length] as string[]));
    // Each recipient exists, at the head, before publishing starts.
    for (const r of racers) await r.connectOnce(0, (s) => s.events.some((e) => e.event === 'live'));
    expect(racers.map((r) => r.conns[0]?.resumeFrom)).toEqual(racers.map(() => 0));

    const t0 = Date.now();
    const pub = runPublisher(ctx.server.url, TOTAL, ['race.a', 'race.b', 'race.c', 'other', 'zzz'], { batch: 10, concurrency: 3 });
    const running = racers.map((r) => r.run());
    const { published } = await pub.done;
    for (const r of racers) r.stopped = true;
    await Promise.all(running);
    expect(published.map(([id]) => id)).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));
    const racedMs = Date.now() - t0;

    let connections = 0;
    let handovers = 0;
    for (const r of racers) {
      const expected = published.filter(([, ch]) => r.patterns.some((p) => globMatch(p, ch))).map(([id]) => id);
      // A last stream that stays until it has everything.
      // Publishing is over: its `live` vouches for everything up to the head.
      await r.connectOnce(0, (s) => s.events.some((e) => e.event === 'live'));

      const all: number[] = [];
      for (const [i, conn] of r.conns.entries()) {
        // Per stream: strictly increasing, all after its resume point.
        for (let k = 0; k < conn.ids.length; k++) {
          const prev = k === 0 ? conn.resumeFrom : (conn.ids[k - 1] as number);
          if (!((conn.ids[k] as number) > prev)) expect.fail(`racer ${r.n} (${r.mode}) stream ${i}: id ${conn.ids[k]} after ${prev}`);
        }
        all.push(...conn.ids);
      }
      // Nothing was removed, so no gap; and each stream resumed exactly after the last one's last event: exactly once.
      expect(r.conns.flatMap((c) => c.gaps)).toEqual([]);
      expect(all).toEqual(expected);
      connections += r.conns.length;
      handovers += r.conns.filter((c) => c.reachedLive && c.ids.length).length;
    }
    process.stdout.write(
      `SSE hand-over race: ${connections} streams, ${handovers} reached live with messages; raced ${racedMs} ms, checked in ${Date.now() - t0 - racedMs} ms\n`,
    );
  });
});
