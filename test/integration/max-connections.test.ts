// DPS_MAX_CONNECTIONS: a process's own server holds at most that many connections. With workers, a full worker's new
// connections go to another worker (node:cluster routes them), and with every worker full they wait in the primary
// until one has room; a single process closes them before any upgrade. A connection that closes makes room again.
import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from '@durable-pubsub/server';
import { afterEach, describe, expect, it } from 'vitest';
import { sleep, startTestRedis, type TestRedis, until } from '../support/env';
import { RawClient } from '../support/raw-client';

const BIN = new URL('../../server/bin/durable-pubsub.mjs', import.meta.url).pathname;

interface Served {
  wsUrl: string;
  /** the pid of the process that logged the recipient's connection (0: a single process, which logs none) */
  pidOf(recipient: string): number | undefined;
}

let redis: TestRedis | undefined;
let primary: ChildProcess | undefined;

afterEach(async () => {
  if (primary && primary.exitCode === null && primary.signalCode === null) primary.kill('SIGKILL');
  primary = undefined;
  await redis?.cleanup();
  redis = undefined;
});

async function serve(workers: number, maxConnections: number): Promise<Served> {
  redis = await startTestRedis();
  const port = await freePort();
  let out = '';
  primary = spawn(process.execPath, [BIN, 'serve', '--workers', String(workers)], {
    env: { ...process.env, PORT: String(port), REDIS_URL: redis.url, DPS_LOG_LEVEL: 'info', DPS_MAX_CONNECTIONS: String(maxConnections) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  primary.stdout?.on('data', (d) => {
    out += d;
  });
  const lines = () =>
    out
      .slice(0, out.lastIndexOf('\n'))
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; pid?: number; recipient?: string });
  await until(() => lines().some((l) => l.msg === 'durable-pubsub is listening'), 30_000, 'the server to listen');
  return {
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    pidOf: (recipient) => {
      const line = lines().findLast((l) => l.msg === 'connection open' && l.recipient === recipient);
      return line && (line.pid ?? 0);
    },
  };
}

/** A connection that says hello and is welcomed, or null when the server closed it first. */
async function open(s: Served, recipient: string): Promise<RawClient | null> {
  let c: RawClient;
  try {
    c = await RawClient.connect(s.wsUrl);
  } catch {
    return null;
  }
  try {
    await c.hello({ recipient, subs: ['cap.*'] });
  } catch {
    return null;
  }
  await until(() => s.pidOf(recipient) !== undefined, 10_000, `${recipient} to be logged`);
  return c;
}

describe('DPS_MAX_CONNECTIONS', () => {
  it('one process: past the limit a connection is closed before its upgrade; one closing makes room', async () => {
    const s = await serve(1, 2);
    const a = await open(s, 'cap-a');
    const b = await open(s, 'cap-b');
    expect([a !== null, b !== null]).toEqual([true, true]);
    expect(await open(s, 'cap-c')).toBeNull();
    a?.close();
    await until(async () => (await open(s, 'cap-d')) !== null, 10_000, 'room for a new connection');
    b?.close();
  });

  it('two workers: a full worker hands its connections to the other; with both full a connection waits for room', async () => {
    const s = await serve(2, 2);
    const clients: RawClient[] = [];
    for (const r of ['w-0', 'w-1', 'w-2', 'w-3']) {
      const c = await open(s, r);
      expect(c).not.toBeNull();
      clients.push(c as RawClient);
    }
    // Two on each worker, whatever order the primary handed them out in.
    const perPid = new Map<number, number>();
    for (const r of ['w-0', 'w-1', 'w-2', 'w-3']) perPid.set(s.pidOf(r) as number, (perPid.get(s.pidOf(r) as number) ?? 0) + 1);
    expect([...perPid.values()]).toEqual([2, 2]);
    // Both full: the fifth is held by the primary (no upgrade, no welcome) until a connection closes.
    const fifth = open(s, 'w-4');
    let settled = false;
    void fifth.then(() => {
      settled = true;
    });
    await sleep(1000);
    expect(settled).toBe(false);
    clients[0]?.close();
    const c = await fifth;
    expect(c).not.toBeNull();
    expect(s.pidOf('w-4')).toBe(s.pidOf('w-0'));
    for (const x of [...clients.slice(1), c]) x?.close();
  });
});
