// Chromium's own EventSource on a page of another origin (CORS): a reload mid-stream and a server that ends the stream both deliver every message exactly once.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from '@durable-pubsub/server';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/browser';
import { httpPublish, sleep, startTestRedis, startTestServer, type TestRedis, type TestServer, until } from '../support/env';

// Each processed id goes to localStorage as it is handled, with the event's id: a reloaded page opens its new
// EventSource with ?lastEventId= (a new EventSource cannot send Last-Event-ID); within one page the browser's own
// reconnects send the header.
const PAGE = `<!doctype html><meta charset="utf-8"><title>sse</title><script>
  const q = new URLSearchParams(location.search);
  const got = JSON.parse(localStorage.getItem('got') || '[]');
  const last = localStorage.getItem('last');
  const url = new URL(q.get('sse'));
  if (last) url.searchParams.set('lastEventId', last);
  window.welcomes = [];
  window.closes = [];
  window.lives = 0;
  window.errors = 0;
  const es = new EventSource(url);
  es.addEventListener('welcome', (e) => window.welcomes.push(JSON.parse(e.data)));
  es.addEventListener('msg', (e) => {
    got.push(JSON.parse(e.data).id);
    localStorage.setItem('got', JSON.stringify(got));
    localStorage.setItem('last', e.lastEventId);
  });
  es.addEventListener('live', (e) => {
    localStorage.setItem('last', e.lastEventId);
    window.lives++;
  });
  es.addEventListener('close', (e) => window.closes.push(JSON.parse(e.data)));
  es.addEventListener('error', () => window.errors++);
  window.loads = Number(sessionStorage.getItem('loads') || 0) + 1;
  sessionStorage.setItem('loads', String(window.loads));
</script>`;

let redis: TestRedis;
/** the server the page reads from, on a port of its own so that it can be restarted there */
let node: TestServer;
let nodeEnv: Record<string, string>;
/** another server on the same log, to publish while `node` is down */
let publisher: TestServer;
let pages: Server;
let pagesUrl: string;
let browser: Browser;

beforeAll(async () => {
  redis = await startTestRedis();
  nodeEnv = { PORT: String(await freePort()) };
  [node, publisher] = await Promise.all([startTestServer(redis.url, nodeEnv), startTestServer(redis.url)]);
  pages = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  await new Promise<void>((r) => pages.listen(0, '127.0.0.1', () => r()));
  pagesUrl = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await new Promise((r) => pages?.close(r));
  await Promise.all([node?.stop(), publisher?.stop()]);
  await redis?.cleanup();
});

/** The page on its own origin, reading `feed.*` for `recipient` from `node`; every /v1/sse request's Last-Event-ID is kept. */
async function openPage(
  recipient: string,
): Promise<{ context: BrowserContext; page: Page; requests: { url: string; lastEventId?: string }[] }> {
  const context = await browser.newContext();
  const requests: { url: string; lastEventId?: string }[] = [];
  context.on('request', (req) => {
    if (!req.url().includes('/v1/sse')) return;
    void req.allHeaders().then((h) => requests.push({ url: req.url(), lastEventId: h['last-event-id'] }));
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const sse = `${node.url}/v1/sse?recipient=${recipient}&subs=feed.*`;
  await page.goto(`${pagesUrl}/?sse=${encodeURIComponent(sse)}`);
  await page.waitForFunction(() => (window as { lives?: number }).lives === 1);
  expect(errors).toEqual([]);
  return { context, page, requests };
}

const processed = (page: Page): Promise<number[]> => page.evaluate(() => JSON.parse(localStorage.getItem('got') || '[]'));

/** Publishes `n` messages on feed.0, feed.1 and other; returns the ids on feed.* */
async function publish(server: TestServer, n: number, at: number): Promise<number[]> {
  const channels = Array.from({ length: n }, (_, i) => ['feed.0', 'feed.1', 'other'][(at + i) % 3] as string);
  const r = await httpPublish(server, { messages: channels.map((ch, i) => ({ ch, data: at + i })) });
  expect(r.status).toBe(200);
  return (r.body.ids as number[]).filter((_, i) => channels[i] !== 'other');
}

describe("Chromium's EventSource", () => {
  it('after a reload mid-stream (resuming by ?lastEventId= from localStorage) the page has every message exactly once', async () => {
    const { context, page, requests } = await openPage('reloader');
    const published: number[] = [];
    const publishing = (async () => {
      for (let i = 0; i < 40; i++) {
        published.push(...(await publish(node, 6, i * 6)));
        await sleep(20);
      }
    })();
    await until(() => published.length >= 80, 15_000, 'publishing under way');
    await page.reload();
    await publishing;
    const last = published[published.length - 1];
    await page.waitForFunction((id) => JSON.parse(localStorage.getItem('got') || '[]').includes(id), last, { timeout: 15_000 });
    expect(published).toHaveLength(160);
    expect(await processed(page)).toEqual(published);
    expect(await page.evaluate(() => (window as { loads?: number }).loads)).toBe(2);
    // The reloaded page resumed from where the first one stopped, by the query (a new EventSource sends no header).
    await until(() => requests.length >= 2, 5000, 'both requests');
    const epoch = await page.evaluate(() => (window as { welcomes?: { epoch: string }[] }).welcomes?.[0]?.epoch);
    const resumedAt = await page.evaluate(() => (window as { welcomes?: { resumeFrom: number }[] }).welcomes?.[0]?.resumeFrom);
    expect(requests.map((r) => [new URL(r.url).searchParams.get('lastEventId'), r.lastEventId])).toEqual([
      [null, undefined],
      [`${epoch}:${resumedAt}`, undefined],
    ]);
    await context.close();
  });

  it('when the server ends the stream, it reconnects on its own with Last-Event-ID and misses nothing', async () => {
    const { context, page, requests } = await openPage('restarted');
    const a = await publish(node, 15, 0);
    await page.waitForFunction((id) => JSON.parse(localStorage.getItem('got') || '[]').includes(id), a[a.length - 1]);
    await node.stop(); // the stream ends with a `close` event; the browser reconnects after `retry`
    const b = await publish(publisher, 15, 15);
    node = await startTestServer(redis.url, nodeEnv);
    await page.waitForFunction((id) => JSON.parse(localStorage.getItem('got') || '[]').includes(id), b[b.length - 1], {
      timeout: 20_000,
    });
    const c = await publish(node, 6, 30);
    await page.waitForFunction((id) => JSON.parse(localStorage.getItem('got') || '[]').includes(id), c[c.length - 1]);

    expect(await processed(page)).toEqual([...a, ...b, ...c]);
    const state = await page.evaluate(() => {
      const w = window as unknown as { welcomes: { epoch: string; resumeFrom: number }[]; closes: unknown[]; lives: number; loads: number };
      return { welcomes: w.welcomes, closes: w.closes, lives: w.lives, loads: w.loads };
    });
    const epoch = state.welcomes[0]?.epoch;
    expect(state.closes).toEqual([{ code: 1001, reason: expect.any(String) }]);
    expect([state.loads, state.lives, state.welcomes.map((w) => w.resumeFrom).slice(1)]).toEqual([1, 2, [a[a.length - 1]]]);
    // Every reconnect (the browser may try more than once while the server is down) carries the last event's id.
    await until(() => requests.length >= 2, 5000, 'the reconnect');
    expect(requests[0]?.lastEventId).toBe(undefined);
    expect(requests.slice(1).map((r) => r.lastEventId)).toEqual(requests.slice(1).map(() => `${epoch}:${a[a.length - 1]}`));
    await context.close();
  });
});
