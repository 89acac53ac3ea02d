// The packages as an app gets them: packed, installed with plain npm into an empty app outside the repository, embedded
// in the app's own HTTP server and run by plain node (no tsx), a client of the packed SDK receiving what the app publishes.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, type TestRedis, until } from '../support/env';
import { appInstallSpecs, createApp, outsideEnv, packPackages, REPO } from '../support/packages';

const run = promisify(execFile);

/** The app: a route of its own, one that publishes in process, and durable-pubsub on the same HTTP server. */
const SERVER = `
import { createServer } from 'node:http';
import { durablePubsub } from '@durable-pubsub/server';

const [redisUrl, namespace] = process.argv.slice(2);
const dps = await durablePubsub({ redisUrl, namespace, log: 'silent' });
const server = createServer(async (req, res) => {
  if (req.method === 'GET' && req.url === '/hello') return res.end('hi');
  if (req.method === 'POST' && req.url === '/orders') {
    let body = '';
    for await (const chunk of req) body += chunk;
    const { data, key } = JSON.parse(body);
    res.setHeader('content-type', 'application/json');
    return res.end(JSON.stringify(await dps.publish('orders.eu', data, { key })));
  }
  dps.handleRequest(req, res);
});
dps.attach(server, { path: '/ws' });
server.listen(0, '127.0.0.1', () => console.log('listening', server.address().port));
process.once('SIGTERM', async () => {
  await dps.close();
  server.close();
  server.closeAllConnections();
});
`;

/** A client of the packed SDK: each message of orders.* as a JSON line, until one whose data says last. */
const CLIENT = `
import { createClient, memoryStorage } from '@durable-pubsub/client-sdk';
import WebSocket from 'ws';

const client = createClient({ url: process.argv[2], recipient: 'packed-app', storage: memoryStorage(), WebSocket });
client.on('state', (e) => e.newState === 'live' && console.log('live'));
client.subscribe('orders.*', (m) => {
  console.log(JSON.stringify([m.id, m.ch, m.data]));
  if (m.data.last) client.close();
});
`;

/** Every entry with its types, under strict settings and with the declarations themselves checked. */
const TYPES = `
import { createServer } from 'node:http';
import { durablePubsub } from '@durable-pubsub/server';
import { createClient, memoryStorage, type Message } from '@durable-pubsub/client-sdk';
import { PROTOCOL_VERSION, type ServerFrame } from '@durable-pubsub/client-sdk/protocol';
import { tabRelay } from '@durable-pubsub/client-sdk/tabs';

const dps = await durablePubsub({ redisUrl: 'redis://127.0.0.1:6379', namespace: 'types', log: 'silent' });
dps.attach(createServer(), { path: '/ws' });
const published: { id: number; dup?: true } = await dps.publish('orders.eu', { n: 1 }, { key: 'k' });
const client = createClient({ url: 'ws://127.0.0.1/ws', recipient: 'r', storage: memoryStorage(), shareAcrossTabs: tabRelay });
client.subscribe('orders.*', (m: Message) => console.log(m.id, published.id));
export const version: number = PROTOCOL_VERSION;
export type Frame = ServerFrame;
`;

let dir: string;
let app: string;
let redis: TestRedis;
const children: ChildProcess[] = [];

/** Runs a script of the app with plain node; `lines` fills with what it prints on stdout, `errors` with stderr. */
function node(
  script: string,
  args: string[],
): { child: ChildProcess; lines: string[]; errors: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [script, ...args], { cwd: app, env: outsideEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines: string[] = [];
  let rest = '';
  child.stdout?.on('data', (d) => {
    const parts = (rest + d).split('\n');
    rest = parts.pop() as string;
    lines.push(...parts);
  });
  let errors = '';
  child.stderr?.on('data', (d) => {
    errors += d;
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, lines, errors: () => errors, exit };
}

async function post(url: string, body: unknown): Promise<unknown> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  return res.json();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dps-packed-app-'));
  app = join(dir, 'app');
  const packed = await packPackages(join(dir, 'packs'));
  await createApp(app, appInstallSpecs(packed), { offline: true });
  writeFileSync(join(app, 'server.js'), SERVER);
  writeFileSync(join(app, 'client.js'), CLIENT);
  redis = await startTestRedis();
}, 240_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await redis?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a packed app', () => {
  it('runs durable-pubsub in its own HTTP server with plain node: its route answers, a client of the packed SDK gets both publish paths in order', async () => {
    const server = node('server.js', [redis.url, 'packed-app']);
    const listening = () => server.lines.find((l) => l.startsWith('listening '));
    await until(() => listening() !== undefined || server.child.exitCode !== null, 20_000, 'the app to listen');
    expect(listening(), `the app exited: ${server.errors()}`).toBeDefined();
    const port = Number(listening()?.split(' ')[1]);
    const base = `http://127.0.0.1:${port}`;

    const hello = await fetch(`${base}/hello`);
    expect([hello.status, await hello.text()]).toEqual([200, 'hi']);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/nothing-here`)).status).toBe(404);

    const client = node('client.js', [`ws://127.0.0.1:${port}/ws`]);
    await until(() => client.lines.includes('live'), 20_000, 'the client to be live');
    // In turn: in process (dps.publish behind the app's /orders) and over HTTP (POST /v1/publish on the app's port).
    expect([
      await post(`${base}/orders`, { data: { n: 1 }, key: 'order-1' }),
      await post(`${base}/v1/publish`, { ch: 'orders.us', data: { n: 2 } }),
      await post(`${base}/orders`, { data: { n: 3 } }),
      await post(`${base}/orders`, { data: { n: 1 }, key: 'order-1' }),
      await post(`${base}/v1/publish`, { ch: 'elsewhere', data: 'not for orders.*' }),
      await post(`${base}/v1/publish`, { ch: 'orders.us', data: { n: 4 } }),
      await post(`${base}/orders`, { data: { n: 5, last: true } }),
    ]).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }, { id: 1, dup: true }, { id: 4 }, { id: 5 }, { id: 6 }]);
    expect([await client.exit, client.errors()]).toEqual([0, '']);
    expect(client.lines.filter((l) => l !== 'live').map((l) => JSON.parse(l))).toEqual([
      [1, 'orders.eu', { n: 1 }],
      [2, 'orders.us', { n: 2 }],
      [3, 'orders.eu', { n: 3 }],
      [5, 'orders.us', { n: 4 }],
      [6, 'orders.eu', { n: 5, last: true }],
    ]);
    expect(await fetch(`${base}/hello`).then((r) => r.text())).toBe('hi');

    // dps.close() lets the app's process end by itself: nothing of durable-pubsub keeps it alive.
    server.child.kill('SIGTERM');
    const stopped = await Promise.race([server.exit, new Promise((r) => setTimeout(() => r('still running 10 s after SIGTERM'), 10_000))]);
    expect([stopped, server.errors()]).toEqual([0, '']);
  });

  it('type-checks against the packed declarations under moduleResolution node16, nodenext and bundler', async () => {
    writeFileSync(join(app, 'types.ts'), TYPES);
    for (const [module, moduleResolution] of [
      ['node16', 'node16'],
      ['nodenext', 'nodenext'],
      ['esnext', 'bundler'],
    ] as const) {
      const config = `tsconfig.${moduleResolution}.json`;
      const compilerOptions = {
        module,
        moduleResolution,
        target: 'es2022',
        lib: ['es2023'],
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
        // @types/node from the workspace: the app itself needs nothing to compile but the packed packages
        typeRoots: [join(REPO, 'node_modules/@types')],
      };
      writeFileSync(join(app, config), JSON.stringify({ compilerOptions, files: ['types.ts'] }));
      const r = await run(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', config], {
        cwd: app,
        encoding: 'utf8',
      }).then(
        () => '',
        (err: { stdout?: string; message: string }) => err.stdout || err.message,
      );
      expect([moduleResolution, r]).toEqual([moduleResolution, '']);
    }
  }, 180_000); // three tsc runs: 60 s was reached on a loaded machine
});
