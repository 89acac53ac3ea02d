// Redis killed (-9) and restarted under running publishers and subscribers: with AOF `always` nothing is
// lost or repeated; with a Redis that lost everything, or one that may have lost its last second, clients are told.
import { afterEach, describe, expect, it } from 'vitest';
import { type ServerProcess, serverProcess, sleep, startTestRedis, type TestRedis, until } from '../support/env';
import { allLive, mergeFailures, type Recorder, record, type SteadyResult, steadyPublisher } from '../support/recorder';

const CHANNELS = ['rr.a', 'rr.b', 'rr.c'];
/** recipient → patterns; the expected ids of each are the published ids on matching channels */
const RECIPIENTS: [string, string[], (ch: string) => boolean][] = [
  ['rr-all', ['rr.*'], () => true],
  ['rr-a', ['rr.a'], (ch) => ch === 'rr.a'],
  ['rr-bc', ['rr.b', 'rr.c'], (ch) => ch !== 'rr.a'],
];

let redis: TestRedis | undefined;
let server: ServerProcess | undefined;
let clients: Recorder[] = [];
afterEach(async () => {
  for (const c of clients) c.client.close();
  clients = [];
  await server?.stop();
  await redis?.cleanup();
  server = undefined;
  redis = undefined;
});

async function run(opts: { appendonly: boolean; appendfsync?: 'always' | 'everysec'; restarts: number; wipe?: boolean }) {
  redis = await startTestRedis({ appendonly: opts.appendonly, appendfsync: opts.appendfsync });
  server = await serverProcess(redis.url, { DPS_JANITOR_INTERVAL: '200' });
  const epochs = [String(await redis.client.get('dps:{default}:epoch'))];
  clients = RECIPIENTS.map(([name, patterns]) => record(server?.wsUrl as string, name, patterns));
  await allLive(clients);
  const pubs = Array.from({ length: 4 }, (_, i) => steadyPublisher(server?.url as string, `p${i}`, CHANNELS, 2));
  const outages: number[] = [];
  for (let k = 0; k < opts.restarts; k++) {
    await sleep(1500);
    const t0 = performance.now();
    await redis.restart({ kill: true });
    // The log's epoch as the server settles it (a changed one is set by the first node that notices).
    await until(async () => (await fetch(`${server?.url}/readyz`).then((r) => r.ok)) === true, 20_000, 'ready again');
    outages.push(Math.round(performance.now() - t0));
    await sleep(300);
    epochs.push(String(await redis.client.get('dps:{default}:epoch').catch(() => 'unreachable')));
  }
  await sleep(1000);
  const results: SteadyResult[] = await Promise.all(pubs.map((p) => p.stop()));
  return { results, epochs, outages };
}

/** Waits until each client's current epoch holds `expected(recipient)` ids, then compares exactly. */
async function settle(expected: (name: string, match: (ch: string) => boolean) => number[]) {
  const want = new Map(RECIPIENTS.map(([name, , match]) => [name, expected(name, match)]));
  await until(
    () => clients.every((c, i) => c.seen.length >= (want.get(RECIPIENTS[i]?.[0] as string)?.length ?? 0)),
    60_000,
    'every client to receive everything',
  );
  await sleep(300); // anything extra (a duplicate) would arrive now
  return want;
}

describe('Redis kill -9 and restart', () => {
  it('AOF always, 5 restarts under 4 publishers: every acknowledged publish reaches every matching recipient, no duplicate to a handler', async () => {
    const { results, epochs, outages } = await run({ appendonly: true, appendfsync: 'always', restarts: 5 });
    const published = results.flatMap((r) => r.published).sort((a, b) => a[0] - b[0]);
    const failures = mergeFailures(results);
    const want = await settle((_, match) => published.filter(([, ch]) => match(ch)).map(([id]) => id));
    console.log(
      `redis restarts (AOF always): ${published.length} publishes acknowledged, refused attempts ${JSON.stringify(failures)}, ` +
        `slowest refusal ${Math.max(...results.map((r) => r.slowestFailureMs)).toFixed(0)} ms, longest outage seen by a publisher ${Math.max(...results.map((r) => r.longestOutageMs)).toFixed(0)} ms, ` +
        `restart → ready ${outages.join('/')} ms; delivered ${clients.map((c) => `${c.seen.length}`).join('/')}, duplicates dropped by the SDK ${clients.map((c) => c.client.duplicatesDropped).join('/')}`,
    );
    for (const [i, c] of clients.entries()) {
      expect(c.resets).toBe(0);
      expect(c.epochs).toHaveLength(1);
      expect(c.seen).toEqual(want.get(RECIPIENTS[i]?.[0] as string));
    }
    // Nothing lost, so the log kept its epoch through every restart.
    expect(new Set(epochs).size).toBe(1);
    // Publishes during an outage were refused as unavailable, nothing else.
    expect(Object.keys(failures).filter((k) => k !== '503 unavailable')).toEqual([]);
    expect(failures['503 unavailable']).toBeGreaterThan(0);
  });

  it('a Redis that lost everything (no persistence), restarted twice: every client is told (reset), then gets every publish of the new log', async () => {
    const { results, epochs } = await run({ appendonly: false, restarts: 2 });
    // The final log's publishes: each one's idempotency key (publisher-n, remembered for 24 h and never trimmed) is in
    // it with its id. (Telling epochs apart by a drop in a publisher's ids fails when a publish held across a restart,
    // answered 503 only once its deadline passed, is stored in the new log with a higher id than its last one.)
    const finalEpoch: [number, string][] = [];
    for (const [p, r] of results.entries())
      for (const [n, [id, ch]] of r.published.entries())
        if (Number(await redis?.client.get(`dps:{default}:idem:p${p}-${n}`)) === id) finalEpoch.push([id, ch]);
    finalEpoch.sort((a, b) => a[0] - b[0]);
    const want = await settle((_, match) => finalEpoch.filter(([, ch]) => match(ch)).map(([id]) => id));
    const published = results.flatMap((r) => r.published);
    console.log(
      `fresh Redis twice: ${new Set(epochs).size} distinct epochs; resets per client ${clients.map((c) => c.resets).join('/')}; ` +
        `${published.length} publishes acknowledged, ${finalEpoch.length} of them in the final log; ` +
        `final-epoch deliveries ${clients.map((c) => c.seen.length).join('/')}; refused attempts ${JSON.stringify(mergeFailures(results))}`,
    );
    expect(new Set(epochs).size).toBe(3);
    for (const [i, c] of clients.entries()) {
      expect(c.resets).toBe(2);
      expect(c.seen).toEqual(want.get(RECIPIENTS[i]?.[0] as string));
    }
  });

  it('AOF everysec: a crash may lose the last second, so the log starts a new epoch and clients are told', async () => {
    const { epochs } = await run({ appendonly: true, appendfsync: 'everysec', restarts: 1 });
    await until(() => clients.every((c) => c.resets === 1 && c.client.state === 'live'), 20_000, 'every client reset and live');
    console.log(`AOF everysec crash: epochs ${epochs.join(' → ')}, resets per client ${clients.map((c) => c.resets).join('/')}`);
    expect(new Set(epochs).size).toBe(2);
    for (const c of clients) expect(c.resets).toBe(1);
  });
});
