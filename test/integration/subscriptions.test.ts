// One user, many devices and tabs: positions per (recipient, pattern set), trimming per set, and gaps for what was removed.
import { describe, expect, it } from 'vitest';
import { httpPublish, sleep, until, withServer } from '../support/env';
import { type Frame, RawClient } from '../support/raw-client';

// The janitor is run by hand (runOnce), so each step is deterministic; TTL 2 s for the forgetting cases.
const ctx = withServer({ DPS_RECIPIENT_TTL: '2' });

async function publish(ch: string, n: number): Promise<number[]> {
  return (await httpPublish(ctx.server, { messages: Array.from({ length: n }, (_, i) => ({ ch, data: i })) })).body.ids;
}

const stored = async (ch: string) =>
  (await ctx.redis.client.zrangebyscore(`dps:{default}:ch:${ch}`, '-inf', '+inf')).map((f) => JSON.parse(f).id);

/** The stored position of (recipient, pattern set), or null. */
const position = async (recipient: string, patterns: string[]) => {
  const v = await ctx.redis.client.zscore(`dps:{default}:pset:${JSON.stringify([...patterns].sort())}`, recipient);
  return v === null ? null : Number(v);
};

async function open(recipient: string, subs: string[], fields: { epoch?: string; lastAckedId?: number } = {}) {
  const c = await RawClient.connect(ctx.server.wsUrl);
  const welcome = await c.hello({ recipient, subs, ...fields });
  await c.next('live');
  return { c, welcome };
}

async function ackAll(c: RawClient, recipient: string, subs: string[], id: number): Promise<void> {
  await c.waitFor((f) => f.id === id, 5000, `message ${id}`);
  c.send({ op: 'ack', id });
  await until(async () => (await position(recipient, subs)) === id, 5000, 'the ack to be stored');
}

async function shut(c: RawClient): Promise<void> {
  c.close();
  await c.closed();
}

/** What a connection got after its welcome: msg ids, and gaps and live as frames. */
const stream = (c: RawClient) => c.frames.slice(1).map((f: Frame) => (f.op === 'msg' ? f.id : f));

describe('positions per (recipient, pattern set)', () => {
  it("one device's acks never move another's: the phone gets its own 10 messages back", async () => {
    const phone = await open('user-1', ['b.*']);
    const warm = await publish('b.x', 1);
    await ackAll(phone.c, 'user-1', ['b.*'], warm[0] as number);
    await shut(phone.c);

    const desktop = await open('user-1', ['a.*']);
    const forPhone = await publish('b.x', 10);
    const forDesktop = await publish('a.x', 10);
    await ackAll(desktop.c, 'user-1', ['a.*'], forDesktop[9] as number);
    await ctx.server.janitor.runOnce(true);

    // The phone has no position of its own (a fresh app, a script): the stored one of its set is used.
    const back = await open('user-1', ['b.*']);
    expect(back.welcome.resumeFrom).toBe(warm[0]);
    expect(stream(back.c)).toEqual([...forPhone, { op: 'live', id: forDesktop[9] }]);
    await shut(back.c);
    await shut(desktop.c);
  });

  it('the janitor keeps what a tab of the same recipient has not acked, whichever tab said hello last', async () => {
    const tabA = await open('user-2', ['c.*']);
    const first = await publish('c.x', 1);
    await ackAll(tabA.c, 'user-2', ['c.*'], first[0] as number);
    await shut(tabA.c);
    const tabB = await open('user-2', ['d.*']); // said hello last
    const other = await open('bystander-2', ['c.*']);

    const missed = await publish('c.x', 20);
    await ackAll(other.c, 'bystander-2', ['c.*'], missed[19] as number);
    await ctx.server.janitor.runOnce(true);
    expect(await stored('c.x')).toEqual(missed); // only what every set acked went (first[0])

    const back = await open('user-2', ['c.*']);
    expect(stream(back.c)).toEqual([...missed, { op: 'live', id: missed[19] }]);
    await ackAll(back.c, 'user-2', ['c.*'], missed[19] as number);
    await ctx.server.janitor.runOnce(true);
    expect(await stored('c.x')).toEqual([]);
    for (const c of [back.c, tabB.c, other.c]) await shut(c);
  });

  it('a forgotten recipient that comes back with its own position is told, in a gap, of every removed message', async () => {
    const ghost = await open('ghost-3', ['e.*']);
    const seen = await publish('e.x', 1);
    await ackAll(ghost.c, 'ghost-3', ['e.*'], seen[0] as number);
    await shut(ghost.c);
    const reader = await open('reader-3', ['e.*']);
    await sleep(2200); // past DPS_RECIPIENT_TTL
    const report = await ctx.server.janitor.runOnce(true);
    expect(report?.forgotten).toContain('ghost-3');
    expect(report?.forgotten).not.toContain('reader-3'); // connected here

    const removed = await publish('e.x', 10);
    await ackAll(reader.c, 'reader-3', ['e.*'], removed[9] as number);
    await ctx.server.janitor.runOnce(true);
    expect(await stored('e.x')).toEqual([]);
    const kept = await publish('e.x', 2);

    const back = await open('ghost-3', ['e.*'], { epoch: ghost.welcome.epoch, lastAckedId: seen[0] });
    expect(stream(back.c)).toEqual([
      { op: 'gap', ch: 'e.x', after: seen[0], upTo: removed[9], reason: 'retention' },
      ...kept,
      { op: 'live', id: kept[1] },
    ]);
    await shut(back.c);
    await shut(reader.c);
  });

  it('a set the recipient has not used starts at its newest position; a new recipient as `from` says', async () => {
    const known = await open('user-4', ['f.a']);
    const ids = await publish('f.a', 3);
    await ackAll(known.c, 'user-4', ['f.a'], ids[2] as number);
    const later = await publish('f.b', 2);
    const fresh = await open('user-4', ['f.b', 'f.a']); // a new set: from the recipient's newest position, ids[2]
    expect(fresh.welcome.resumeFrom).toBe(ids[2]);
    expect(stream(fresh.c)).toEqual([...later, { op: 'live', id: later[1] }]);
    const stranger = await open('user-4b', ['f.*']); // a new recipient: from the head
    expect(stranger.welcome.resumeFrom).toBe(later[1]);
    // Order and repetitions do not make another set.
    const same = await open('user-4', ['f.a', 'f.b', 'f.a']);
    expect(same.welcome.resumeFrom).toBe(ids[2]);
    for (const c of [known.c, fresh.c, stranger.c, same.c]) await shut(c);
  });

  it('sub and unsub carry a connection position to its new set while offline devices keep theirs', async () => {
    const tablet = await open('user-5', ['g.a']);
    const t0 = await publish('g.a', 2);
    await ackAll(tablet.c, 'user-5', ['g.a'], t0[1] as number);
    await shut(tablet.c); // offline, holds set [g.a] at t0[1]

    const laptop = await open('user-5', ['g.b']);
    const l0 = await publish('g.b', 2);
    await ackAll(laptop.c, 'user-5', ['g.b'], l0[1] as number);
    const churn = async (steps: [op: 'sub' | 'unsub', pattern: string][]) => {
      for (const [op, pattern] of steps) {
        laptop.c.send({ op, pattern, ref: pattern });
        await laptop.c.waitFor((f) => f.op === `${op}bed` && f.pattern === pattern);
      }
    };
    await churn([
      ['sub', 'g.c'],
      ['sub', 'g.a'],
      ['unsub', 'g.b'],
      ['unsub', 'g.a'],
    ]);
    // The laptop is on [g.c] now, at the position it carried through three new sets; [g.b] keeps l0[1]; the tablet's
    // [g.a] is untouched.
    await until(async () => (await position('user-5', ['g.c'])) === l0[1], 5000, 'the carried position');
    for (const set of [['g.b'], ['g.b', 'g.c'], ['g.a', 'g.b', 'g.c'], ['g.a', 'g.c']]) expect(await position('user-5', set)).toBe(l0[1]);
    expect(await position('user-5', ['g.a'])).toBe(t0[1]);

    const onA = await publish('g.a', 3);
    const onC = await publish('g.c', 2);
    await ackAll(laptop.c, 'user-5', ['g.c'], onC[1] as number);
    expect(await position('user-5', ['g.a'])).toBe(t0[1]);
    // Back to a set it used before: that set keeps its own position (another device may be using it).
    await churn([['sub', 'g.a']]);
    await sleep(100);
    expect(await position('user-5', ['g.a', 'g.c'])).toBe(l0[1]);
    await ctx.server.janitor.runOnce(true);
    expect(await stored('g.a')).toEqual(onA); // the tablet's set holds them back

    const back = await open('user-5', ['g.a']);
    expect(stream(back.c)).toEqual([...onA, { op: 'live', id: onC[1] }]);
    await shut(back.c);
    await shut(laptop.c);

    const { body } = await fetch(`${ctx.server.url}/v1/recipients`).then(async (r) => ({ body: await r.json() }));
    const user = body.recipients.find((r: { name: string }) => r.name === 'user-5');
    expect(user.lastAckedId).toBe(onC[1]);
    const sets = user.sets.map((s: { patterns: string[]; lastAckedId: number }) => [s.patterns.join(' '), s.lastAckedId]);
    expect(sets.sort()).toEqual(
      [
        ['g.a', t0[1]],
        ['g.b', l0[1]],
        ['g.b g.c', l0[1]],
        ['g.a g.b g.c', l0[1]],
        ['g.a g.c', l0[1]],
        ['g.c', onC[1]],
      ].sort(),
    );
  });

  it('forgets an unused set after the TTL while the recipient stays for its other set', async () => {
    const old = await open('user-6', ['h.old']);
    await shut(old.c);
    const current = await open('user-6', ['h.new']);
    await sleep(2200);
    const report = await ctx.server.janitor.runOnce(true);
    expect(report?.forgotten).not.toContain('user-6');
    expect(await position('user-6', ['h.old'])).toBe(null);
    expect(await position('user-6', ['h.new'])).not.toBe(null);
    await shut(current.c);
  });
});
