// Every example of examples/ runs as a user runs it: the servers against a real Redis with the SDK in Node, the Vite page built and shown in Chromium.
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { createClient, type Message, memoryStorage } from '@durable-pubsub/client-sdk';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import WebSocket from 'ws';
import { launchChromium } from '../support/browser';
import { startTestRedis, type TestRedis, until } from '../support/env';
import { EXAMPLES, type ExampleProcess, startExample } from '../support/examples';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.cleanup();
});

async function request(url: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(
    url,
    body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
  );
  const text = await res.text();
  return { status: res.status, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
}

/** Prints the example's output when the running test fails. */
function dumpOnFailure(ex: () => ExampleProcess | undefined): void {
  onTestFailed(() => console.error(`--- output of examples/${ex()?.name} ---\n${ex()?.output() ?? '(not started)'}`));
}

describe.each(['express', 'fastify', 'node-http'])('examples/%s', (name) => {
  let ex: ExampleProcess | undefined;
  beforeAll(async () => {
    ex = await startExample(name, redis.url);
  });
  afterAll(() => {
    ex?.child.kill('SIGKILL');
  });

  it("answers its own routes beside durable-pubsub's /healthz", async () => {
    dumpOnFailure(() => ex);
    const url = ex!.url;
    expect(await request(`${url}/`)).toEqual({ status: 200, body: { example: name } });
    expect((await request(`${url}/orders`, { item: 'tea' })).status).toBe(400);
    expect((await request(`${url}/no-such-route`)).status).toBe(404);
    expect(await request(`${url}/healthz`)).toEqual({ status: 200, body: { ok: true } });
  });

  it('delivers what its own route and POST /v1/publish publish to a client on its /ws, in order, a retried order once', async () => {
    dumpOnFailure(() => ex);
    const url = ex!.url;
    const seen: Pick<Message, 'id' | 'ch' | 'data'>[] = [];
    const client = createClient({ url: ex!.wsUrl, recipient: `example-${name}`, storage: memoryStorage(), WebSocket });
    client.subscribe('orders.*', ({ id, ch, data }) => void seen.push({ id, ch, data }));
    try {
      await until(() => client.state === 'live', 10_000, 'the client to be live');
      const a = await request(`${url}/orders`, { orderId: `${name}-1`, item: 'tea' });
      const b = await request(`${url}/v1/publish`, { ch: 'orders.us', data: { orderId: `${name}-2` } });
      const retried = await request(`${url}/orders`, { orderId: `${name}-1`, item: 'tea' });
      const c = await request(`${url}/orders`, { orderId: `${name}-3`, item: 'cake' });
      expect([a.status, b.status, retried.status, c.status]).toEqual([200, 200, 200, 200]);
      expect(retried.body).toEqual({ id: a.body.id, dup: true });
      await until(() => seen.length >= 3, 5000, 'three messages');
      expect(seen).toEqual([
        { id: a.body.id, ch: 'orders.eu', data: { orderId: `${name}-1`, item: 'tea' } },
        { id: b.body.id, ch: 'orders.us', data: { orderId: `${name}-2` } },
        { id: c.body.id, ch: 'orders.eu', data: { orderId: `${name}-3`, item: 'cake' } },
      ]);
    } finally {
      client.close();
    }
  });

  it('exits 0 on SIGTERM while a client is connected', async () => {
    dumpOnFailure(() => ex);
    const client = createClient({
      url: ex!.wsUrl,
      recipient: `example-${name}-term`,
      storage: memoryStorage(),
      WebSocket,
    });
    try {
      await until(() => client.state === 'live', 10_000, 'the client to be live');
      const t0 = Date.now();
      expect(await ex!.stop()).toEqual({ code: 0, signal: null });
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      client.close();
    }
  });
});

/** Serves a built page's files (index.html at /). */
async function serveDir(dir: string): Promise<{ url: string; close(): Promise<void> }> {
  const types: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css' };
  const server = createServer((req, res) => {
    const path = normalize((req.url ?? '/').split('?')[0] as string); // absolute: no way above dir
    const file = join(dir, path === '/' ? 'index.html' : path);
    const stream = createReadStream(file);
    stream.on('open', () => res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }));
    stream.on('error', () => res.writeHead(404).end());
    stream.pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe('examples/vite-page', () => {
  const outDir = mkdtempSync(join(tmpdir(), 'dps-vite-page-'));
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  it('builds with vite build, shows the messages an example server publishes, and after a reload the ones it missed', async () => {
    let ex: ExampleProcess | undefined;
    dumpOnFailure(() => ex);
    await build({ root: `${EXAMPLES}vite-page`, logLevel: 'silent', build: { outDir, emptyOutDir: true } });
    const [started, pages, browser] = await Promise.all([startExample('node-http', redis.url), serveDir(outDir), launchChromium()]);
    ex = started;
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      const pageUrl = `${pages.url}/?ws=${encodeURIComponent(ex.wsUrl)}`;
      const shown = () => page.$$eval('#messages li', (lis) => lis.map((li) => `${li.dataset.id} ${li.textContent}`));
      await page.goto(pageUrl);
      await page.locator('#state', { hasText: /^live$/ }).waitFor({ timeout: 10_000 });
      const a = await request(`${ex.url}/orders`, { orderId: 'page-1' });
      const b = await request(`${ex.url}/v1/publish`, { ch: 'orders.us', data: { orderId: 'page-2' } });
      await page.waitForFunction(() => document.querySelectorAll('#messages li').length >= 2, undefined, { timeout: 5000 });
      expect(await shown()).toEqual([`${a.body.id} orders.eu {"orderId":"page-1"}`, `${b.body.id} orders.us {"orderId":"page-2"}`]);

      // Away from the page (it saves its position on pagehide), one more order; back on it, exactly that one is replayed.
      await page.goto('about:blank');
      const c = await request(`${ex.url}/orders`, { orderId: 'page-3' });
      await page.goto(pageUrl);
      await page.waitForFunction(() => document.querySelectorAll('#messages li').length >= 1, undefined, { timeout: 10_000 });
      await page.locator('#state', { hasText: /^live$/ }).waitFor({ timeout: 10_000 });
      expect(await shown()).toEqual([`${c.body.id} orders.eu {"orderId":"page-3"}`]);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      await pages.close();
      await ex.stop();
    }
  });
});

describe('examples/load-then-resume', () => {
  const outDir = mkdtempSync(join(tmpdir(), 'dps-load-resume-'));
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  it('changes made between the load and the subscribe reach the page: the exact final state, none missed, none applied twice', async () => {
    let ex: ExampleProcess | undefined;
    dumpOnFailure(() => ex);
    await build({ root: `${EXAMPLES}load-then-resume`, logLevel: 'silent', build: { outDir, emptyOutDir: true } });
    const [started, browser] = await Promise.all([startExample('load-then-resume', redis.url, { STATIC_DIR: outDir }), launchChromium()]);
    ex = started;
    const set = async (id: string, value: string) => {
      const r = await request(`${ex?.url}/items/${id}`, { value });
      expect(r.status).toBe(200);
      return r.body as { id: string; value: string; version: number; published: number };
    };
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      const shown = () => page.$$eval('#items li', (lis) => lis.map((li) => li.textContent));
      await set('a', 'one');
      await set('b', 'one');
      await page.goto(`${ex.url}/?hold`);
      await page.locator('#state', { hasText: /^held$/ }).waitFor({ timeout: 10_000 });
      expect(await shown()).toEqual(['a=one v1', 'b=one v1']);
      // Loaded, not yet subscribed: these land in between.
      await set('a', 'two');
      await set('c', 'one');
      await set('a', 'three');
      await page.evaluate(() => (window as unknown as { resume(): void }).resume());
      await page.locator('#state', { hasText: /^live$/ }).waitFor({ timeout: 10_000 });
      await set('b', 'two'); // live
      const final = ['a=three v3', 'b=two v2', 'c=one v1'];
      await page.waitForFunction(
        (want) => Array.from(document.querySelectorAll('#items li'), (li) => li.textContent).join('|') === want,
        final.join('|'),
        {
          timeout: 10_000,
        },
      );
      expect(await shown()).toEqual(final);
      expect(await page.locator('#repeated').textContent()).toBe('0');
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      await ex.stop();
    }
  });
});
