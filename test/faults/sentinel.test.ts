// Redis Sentinel: the primary is killed, the Sentinels promote the replica, and clients and publishers carry on.
import { afterAll, describe, expect, it } from 'vitest';
import { type ServerProcess, serverProcess, sleep, until } from '../support/env';
import { allLive, mergeFailures, type Recorder, record, steadyPublisher } from '../support/recorder';
import { startSentinel, storedIds, type TestSentinel } from '../support/topology';

let sentinel: TestSentinel | undefined;
let server: ServerProcess | undefined;
let clients: Recorder[] = [];
afterAll(async () => {
  for (const c of clients) c.client.close();
  await server?.stop();
  await sentinel?.cleanup();
});

describe('Redis Sentinel', () => {
  it('primary killed: failover, clients are told (new epoch) and get the whole log, publishers carry on', async () => {
    sentinel = await startSentinel();
    const s = sentinel;
    // A server process configured the documented way; the janitor is off so the log shows what survived.
    server = await serverProcess('', {
      REDIS_URL: '',
      REDIS_SENTINELS: s.sentinels.map((x) => `127.0.0.1:${x.port}`).join(','),
      REDIS_SENTINEL_NAME: 'mymaster',
      DPS_JANITOR_INTERVAL: '600000',
    });
    const srv = server;
    clients = [record(srv.wsUrl, 'sn-all', ['sn.*']), record(srv.wsUrl, 'sn-a', ['sn.a'])];
    await allLive(clients);
    const pubs = [0, 1].map((i) => steadyPublisher(srv.url, `sn${i}`, ['sn.a', 'sn.b'], 3));
    await sleep(1500);
    const t0 = performance.now();
    await s.primary.kill();
    await until(async () => (await s.primaryPort().catch(() => 0)) === s.replica.port, 30_000, 'the Sentinels to promote the replica');
    const promotedMs = Math.round(performance.now() - t0);
    await until(() => clients.every((c) => c.resets === 1 && c.client.state === 'live'), 30_000, 'every client told and live again');
    const toldMs = Math.round(performance.now() - t0);
    await sleep(1500);
    const results = await Promise.all(pubs.map((p) => p.stop()));
    const acknowledged = results.flatMap((r) => r.published);
    const log = await storedIds(s.replica.port, ['sn.a', 'sn.b']);
    const inLog = new Set([...log.values()].flat());
    const lost = acknowledged.filter(([id]) => !inLog.has(id));
    const want = [(ch: string) => ch.startsWith('sn.'), (ch: string) => ch === 'sn.a'].map((match) =>
      [...log]
        .filter(([ch]) => match(ch))
        .flatMap(([, ids]) => ids)
        .sort((a, b) => a - b),
    );
    await until(() => clients.every((c, i) => c.seen.length >= (want[i]?.length ?? 0)), 30_000, 'clients to replay the log');
    await sleep(300);
    const failures = mergeFailures(results);
    console.log(
      `sentinel failover: replica promoted ${promotedMs} ms after the kill, clients told (reset) and live ${toldMs} ms after; ` +
        `publishes refused for at most ${Math.max(...results.map((x) => x.longestOutageMs)).toFixed(0)} ms (the loss window for publishers), ` +
        `refused attempts ${JSON.stringify(failures)}, slowest refusal ${Math.max(...results.map((x) => x.slowestFailureMs)).toFixed(0)} ms; ` +
        `${acknowledged.length} publishes acknowledged, ${lost.length} of them not in the promoted replica's log`,
    );
    expect(Object.keys(failures).filter((k) => k !== '503 unavailable')).toEqual([]);
    for (const [i, c] of clients.entries()) {
      expect(c.resets).toBe(1);
      expect(c.seen).toEqual(want[i]);
    }
  });
});
