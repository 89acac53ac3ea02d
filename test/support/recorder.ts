// SDK clients in Node that record what their handlers saw, per epoch, for the fault tests.
import { spawn } from 'node:child_process';
import { type Client, createClient, memoryStorage } from '@durable-pubsub/client-sdk';
import WebSocket from 'ws';
import { until } from './env';

export interface Recorder {
  client: Client;
  /** ids the handler saw, one list per epoch (a `reset` starts the next) */
  epochs: number[][];
  resets: number;
  /** when the client last became live (ms, performance.now()) */
  liveAt: number;
  /** the longest time between two messages reaching the handler, since `quietFrom()` (ms) */
  longestQuietMs: number;
  /** starts measuring longestQuietMs now */
  quietFrom(): void;
  /** ids seen in the current epoch */
  readonly seen: number[];
}

/** A client with in-memory position storage, fast retries and a handler that records ids. */
export function record(
  url: string | string[],
  recipient: string,
  patterns: string[],
  extra: Partial<Parameters<typeof createClient>[0]> = {},
): Recorder {
  const client = createClient({
    url,
    recipient,
    storage: memoryStorage(),
    WebSocket,
    backoffMin: 50,
    backoffMax: 1000,
    pingInterval: 2000,
    pongTimeout: 2000,
    ...extra,
  });
  const r: Recorder = {
    client,
    epochs: [[]],
    resets: 0,
    liveAt: 0,
    longestQuietMs: 0,
    quietFrom() {
      lastAt = performance.now();
      r.longestQuietMs = 0;
    },
    get seen() {
      return r.epochs[r.epochs.length - 1] as number[];
    },
  };
  client.on('reset', () => {
    r.resets++;
    r.epochs.push([]);
  });
  client.on('state', (e) => {
    if (e.newState === 'live') r.liveAt = performance.now();
  });
  let lastAt = 0;
  for (const p of patterns)
    client.subscribe(p, (m) => {
      r.seen.push(m.id);
      const now = performance.now();
      if (lastAt) r.longestQuietMs = Math.max(r.longestQuietMs, now - lastAt);
      lastAt = now;
    });
  return r;
}

export const allLive = (rs: Recorder[], ms = 20_000) => until(() => rs.every((r) => r.client.state === 'live'), ms, 'every client live');

export interface SteadyResult {
  published: [number, string][];
  failures: Record<string, number>;
  slowestFailureMs: number;
  longestOutageMs: number;
  /** messages that needed more than one attempt */
  retried: number;
}

const STEADY = new URL('./steady-publisher.ts', import.meta.url).pathname;

/** test/support/steady-publisher.ts in its own process; `stop()` ends it and resolves with its report. */
export function steadyPublisher(baseUrl: string, name: string, channels: string[], pauseMs = 2) {
  const child = spawn(process.execPath, ['--import', 'tsx', STEADY, baseUrl, name, String(pauseMs), channels.join(',')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // A test that fails before stop() must not leave it publishing.
  const orphan = () => child.kill('SIGKILL');
  process.once('exit', orphan);
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.once('exit', () => process.removeListener('exit', orphan));
  const done = new Promise<SteadyResult>((resolve, reject) => {
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`publisher ${name} exited with ${code}`))));
  });
  return {
    child,
    stop(): Promise<SteadyResult> {
      child.kill('SIGTERM');
      return done;
    },
  };
}

/** Sum of refusal counts across publishers. */
export function mergeFailures(results: SteadyResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.failures)) out[k] = (out[k] ?? 0) + v;
  return out;
}
