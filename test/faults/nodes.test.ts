// Several server processes on one Redis, no sticky routing: clients given a list of nodes move to a
// live one when theirs is killed (-9) or stopped (SIGTERM), and resume exactly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerProcess, serverProcess, sleep, startTestRedis, type TestRedis, until } from '../support/env';
import { RawClient } from '../support/raw-client';
import { allLive, type Recorder, record, steadyPublisher } from '../support/recorder';

let redis: TestRedis;
let nodes: ServerProcess[] = [];
beforeAll(async () => {
  redis = await startTestRedis();
  nodes = await Promise.all([0, 1, 2].map(() => serverProcess(redis.url, { DPS_JANITOR_INTERVAL: '500' })));
});
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await redis?.cleanup();
});

const ws = (n: ServerProcess | undefined) => (n as ServerProcess).wsUrl;
const ids = (published: [number, string][], match: (ch: string) => boolean) =>
  published
    .filter(([, ch]) => match(ch))
    .map(([id]) => id)
    .sort((a, b) => a - b);

/** Waits until every client that dropped after `since` is live again; returns ms from `since` to the last one. */
async function reconnected(clients: Recorder[], since: number, drops: Map<Recorder, number>): Promise<{ moved: number; ms: number }> {
  await sleep(100);
  await until(() => clients.every((c) => c.client.state === 'live'), 20_000, 'every client live again');
  const moved = clients.filter((c) => (drops.get(c) ?? 0) > since);
  return { moved: moved.length, ms: Math.round(Math.max(0, ...moved.map((c) => c.liveAt - since))) };
}

function watchDrops(clients: Recorder[]): Map<Recorder, number> {
  const drops = new Map<Recorder, number>();
  for (const c of clients)
    c.client.on('state', (e) => {
      if (e.newState === 'reconnecting') drops.set(c, performance.now());
    });
  return drops;
}

describe('several server nodes', () => {
  it('kill -9 a node 10 times while 200 SDK clients stream: every client ends with the complete sequence', async () => {
    const [pubNode, a, b] = nodes as [ServerProcess, ServerProcess, ServerProcess];
    // Half start on A, half on B; each falls over to the other.
    const clients = Array.from({ length: 200 }, (_, i) => record(i % 2 ? [ws(a), ws(b)] : [ws(b), ws(a)], `nk-${i}`, ['nk.*']));
    const drops = watchDrops(clients);
    await allLive(clients, 30_000);
    const pub = steadyPublisher(pubNode.url, 'nk', ['nk.1', 'nk.2', 'nk.3'], 5);
    const report: string[] = [];
    for (let k = 0; k < 10; k++) {
      await sleep(700);
      const victim = k % 2 ? b : a;
      const t0 = performance.now();
      await victim.kill();
      const { moved, ms } = await reconnected(clients, t0, drops);
      report.push(`${moved} live in ${ms} ms`);
      await victim.start();
    }
    await sleep(500);
    const { published } = await pub.stop();
    const want = ids(published, () => true);
    await until(() => clients.every((c) => c.seen.length >= want.length), 60_000, 'every client to catch up');
    await sleep(300);
    console.log(
      `node kill -9 ×10 (200 clients, ${want.length} messages each): after each kill ${report.join('; ')}; ` +
        `duplicates dropped by the SDK ${clients.reduce((n, c) => n + c.client.duplicatesDropped, 0)} in total`,
    );
    for (const c of clients) {
      expect(c.resets).toBe(0);
      expect(c.seen).toEqual(want);
    }
    for (const c of clients) c.client.close();
  });

  it('publishers on A, subscribers on B and C; B killed: its clients resume on C with no gap', async () => {
    const [a, b, c] = nodes as [ServerProcess, ServerProcess, ServerProcess];
    const onB = Array.from({ length: 20 }, (_, i) => record([ws(b), ws(c)], `abc-b${i}`, ['abc.*']));
    const onC = Array.from({ length: 20 }, (_, i) => record([ws(c)], `abc-c${i}`, [i % 2 ? 'abc.x' : 'abc.*']));
    const all = [...onB, ...onC];
    const drops = watchDrops(all);
    await allLive(all);
    const pubs = [0, 1].map((i) => steadyPublisher(a.url, `abc${i}`, ['abc.x', 'abc.y'], 3));
    await sleep(1000);
    const t0 = performance.now();
    await b.kill();
    const { moved, ms } = await reconnected(all, t0, drops);
    await sleep(1000);
    const published = (await Promise.all(pubs.map((p) => p.stop()))).flatMap((r) => r.published);
    const every = ids(published, () => true);
    const onlyX = ids(published, (ch) => ch === 'abc.x');
    await until(() => onB.every((r) => r.seen.length >= every.length), 30_000, 'B clients to catch up');
    await sleep(300);
    console.log(
      `B killed: ${moved} clients moved to C, all live ${ms} ms after the kill; ${every.length} messages (${onlyX.length} on abc.x)`,
    );
    expect(moved).toBe(20);
    for (const r of onB) expect(r.seen).toEqual(every);
    for (const [i, r] of onC.entries()) expect(r.seen).toEqual(i % 2 ? onlyX : every);
    for (const r of all) r.client.close();
    await b.start();
  });

  it('SIGTERM: acks received are stored, sockets close with 1001, and SDK clients are live on another node at once', async () => {
    const [a, b, c] = nodes as [ServerProcess, ServerProcess, ServerProcess];
    // A raw client acks and the node is stopped right after: the ack must be stored before the socket closes.
    const raw = await RawClient.connect(ws(b));
    await raw.hello({ recipient: 'term-raw', subs: ['term.*'] });
    await raw.next('live');
    const sdk = Array.from({ length: 20 }, (_, i) => record([ws(b), ws(c)], `term-${i}`, ['term.*']));
    const drops = watchDrops(sdk);
    await allLive(sdk);
    const sent: number[] = [];
    for (let i = 0; i < 50; i++) {
      const r = await fetch(`${a.url}/v1/publish`, { method: 'POST', body: JSON.stringify({ ch: 'term.x', data: i }) });
      sent.push(((await r.json()) as { id: number }).id);
    }
    await until(() => raw.frames.filter((f) => f.op === 'msg').length === 50, 10_000, 'raw client to get 50');
    await until(() => sdk.every((r) => r.seen.length === 50), 10_000, 'SDK clients to get 50');
    raw.send({ op: 'ack', id: sent[49] });
    const t0 = performance.now();
    b.child.kill('SIGTERM');
    await until(() => raw.closeCode !== null, 10_000, 'the raw socket to close');
    const { moved, ms } = await reconnected(sdk, t0, drops);
    const stored = Number(await redis.client.hget('dps:{default}:r:term-raw', 'acked'));
    console.log(
      `SIGTERM: raw client closed with ${raw.closeCode}, its ack of ${sent[49]} stored as ${stored}; ${moved} SDK clients live on C ${ms} ms after the signal`,
    );
    expect(raw.closeCode).toBe(1001);
    expect(stored).toBe(sent[49]);
    expect(moved).toBe(20);
    for (const r of sdk) expect(r.seen).toEqual(sent);
    for (const r of sdk) r.client.close();
    await until(() => b.child.exitCode !== null, 10_000, 'node B to exit');
    expect(b.child.exitCode).toBe(0);
    await b.start();
  });
});
