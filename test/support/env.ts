// Test fixtures: a real redis-server per test file and the real server in-process on a free port.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type App,
  type Config,
  freePort,
  type Logger,
  loadConfig,
  type ManagedRedis,
  silentLogger,
  startApp,
  startRedis,
} from '@durable-pubsub/server';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';

export interface TestRedis extends ManagedRedis {
  client: Redis;
  dataDir: string;
  /** kills and restarts redis-server on the same port and data dir (running `whileDown` between the two) */
  restart(opts?: { kill?: boolean; whileDown?: () => Promise<void> }): Promise<void>;
  cleanup(): Promise<void>;
}

export async function startTestRedis(opts: { appendonly?: boolean; appendfsync?: 'always' | 'everysec' } = {}): Promise<TestRedis> {
  const dataDir = mkdtempSync(join(tmpdir(), 'dps-redis-'));
  const start = (port?: number) => startRedis({ dataDir, port, appendonly: opts.appendonly ?? false, appendfsync: opts.appendfsync });
  let managed = await start();
  const client = new Redis(managed.url, { protocol: 2, lazyConnect: false, maxRetriesPerRequest: null });
  const t: TestRedis = {
    ...managed,
    client,
    dataDir,
    async restart({ kill = false, whileDown } = {}) {
      await (kill ? managed.kill() : managed.stop());
      await whileDown?.();
      managed = await start(managed.port);
      t.child = managed.child;
      t.stop = managed.stop;
      t.kill = managed.kill;
    },
    async cleanup() {
      client.disconnect();
      await managed.kill();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return t;
}

export interface TestServer extends App {
  config: Config;
  wsUrl: string;
}

export async function startTestServer(
  redisUrl: string,
  env: Record<string, string> = {},
  opts: { staticDir?: string; log?: Logger } = {},
): Promise<TestServer> {
  const config = loadConfig({ PORT: '0', DPS_JANITOR_INTERVAL: '600000', ...env });
  const app = await startApp(config, { redisUrl, log: silentLogger, ...opts });
  return { ...app, config, wsUrl: `ws://127.0.0.1:${app.port}${config.wsPath}` };
}

/** POST /v1/publish; returns the parsed JSON and the status. */
export async function httpPublish(server: { url: string }, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}/v1/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/** Whether `pid` runs (a zombie does not); it may end between any two reads of /proc, so a vanished file is "no". */
export function processAlive(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true or `ms` pass. */
export async function until(check: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const TSX = new URL('../../node_modules/.bin/tsx', import.meta.url).pathname;
const PUBLISHER = new URL('./publisher.ts', import.meta.url).pathname;

/** Runs test/support/publisher.ts in its own process; resolves with every [id, channel] it published. */
export function runPublisher(baseUrl: string, total: number, channels: string[], opts: { batch?: number; concurrency?: number } = {}) {
  const child = spawn(
    TSX,
    [PUBLISHER, baseUrl, String(total), String(opts.batch ?? 20), String(opts.concurrency ?? 4), channels.join(',')],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  const done = new Promise<{ published: [number, string][]; failures: number }>((resolve, reject) => {
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`publisher exited with ${code}`))));
  });
  return { child, done };
}

/**
 * A fresh redis-server and server for one test file, started before its tests and removed after them.
 * With DPS_TEST_REDIS=cluster (the fault suite runs some core tests so) the Redis is a local
 * 3-primary Cluster instead; such files use only `redis.url` and `redis.cleanup`.
 */
export function withServer(env: Record<string, string> = {}): { redis: TestRedis; server: TestServer } {
  const ctx = {} as { redis: TestRedis; server: TestServer };
  beforeAll(async () => {
    if (process.env.DPS_TEST_REDIS === 'cluster') {
      const { startCluster } = await import('./topology');
      ctx.redis = (await startCluster(3)) as unknown as TestRedis;
    } else ctx.redis = await startTestRedis();
    ctx.server = await startTestServer(ctx.redis.url, env);
  }, 60_000);
  afterAll(async () => {
    await ctx.server?.stop();
    await ctx.redis?.cleanup();
  });
  return ctx;
}

const MAIN = new URL('../../server/src/main.ts', import.meta.url).pathname;

export interface ServerProcess {
  url: string;
  wsUrl: string;
  port: number;
  child: ChildProcess;
  /** SIGKILL (a crash) */
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The real server in its own process (`node --import tsx server/src/main.ts`), so tests can crash and restart it. */
export async function serverProcess(redisUrl: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const port = await freePort();
  const sp: ServerProcess = {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    port,
    child: undefined as unknown as ChildProcess,
    async start() {
      sp.child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
        // One process, as a node that can be killed: `serve --workers` has its own test (workers.test.ts).
        env: { ...process.env, PORT: String(port), REDIS_URL: redisUrl, DPS_LOG_LEVEL: 'error', DPS_WORKERS: '1', ...env },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      await until(
        () =>
          fetch(`${sp.url}/readyz`).then(
            (r) => r.ok,
            () => false,
          ),
        20_000,
        'the server process to be ready',
      );
    },
    async kill() {
      const exited = new Promise((r) => sp.child.once('exit', r));
      sp.child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (sp.child.exitCode !== null || sp.child.signalCode !== null) return;
      const exited = new Promise((r) => sp.child.once('exit', r));
      sp.child.kill('SIGTERM');
      await exited;
    },
  };
  await sp.start();
  return sp;
}

/** Samples the largest server-side send buffer of any of `server`'s sockets every 2 ms until stop(). */
export function sampleSendBuffers(server: { sessions: ReadonlySet<unknown> }): { stop(): number } {
  let max = 0;
  const timer = setInterval(() => {
    // A WebSocket session's socket, or an SSE stream's response (a long-poll has neither).
    for (const s of server.sessions) {
      const c = s as { ws?: { bufferedAmount: number }; res?: { writableLength: number } };
      max = Math.max(max, c.ws?.bufferedAmount ?? c.res?.writableLength ?? 0);
    }
  }, 2);
  return {
    stop() {
      clearInterval(timer);
      return max;
    },
  };
}
