// The demo dashboard as a newcomer sees it: built with Vite, served by the real server, driven in real Chromium.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/browser';
import { httpPublish, sleep, startTestRedis, startTestServer, type TestRedis, type TestServer, until } from '../support/env';

const DEMO = new URL('../../demo-web/', import.meta.url).pathname;
const SHOTS = new URL('./screenshots/', import.meta.url).pathname;
let redis: TestRedis;
let server: TestServer;
let browser: Browser;
let dist: string;

beforeAll(async () => {
  dist = mkdtempSync(join(tmpdir(), 'dps-dash-'));
  await build({ root: DEMO, logLevel: 'silent', build: { outDir: dist, emptyOutDir: true } });
  redis = await startTestRedis();
  server = await startTestServer(redis.url, {}, { staticDir: dist });
  browser = await launchChromium();
  mkdirSync(SHOTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await redis?.cleanup();
  rmSync(dist, { recursive: true, force: true });
});

/** Opens the dashboard as `recipient`; collects console errors. */
async function open(recipient: string, query = '', viewport = { width: 1280, height: 860 }): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport });
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${server.url}/?recipient=${recipient}${query}`);
  await live(page);
  return { page, errors };
}

const live = (page: Page) =>
  page
    .getByTestId('state')
    .filter({ hasText: /^live$/ })
    .waitFor({ timeout: 15_000 });
const rowIds = (page: Page): Promise<number[]> =>
  page.$$eval('[data-testid=rows] tr[data-id]', (trs) => trs.map((tr) => Number(tr.getAttribute('data-id'))));
const counter = async (page: Page, id: string) => Number(await page.getByTestId(id).textContent());
const shot = (page: Page, name: string) => page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });

async function publish(n: number, chs = ['orders.eu', 'orders.us', 'prices.btc']): Promise<number[]> {
  const r = await httpPublish(server, {
    messages: Array.from({ length: n }, (_, i) => ({ ch: chs[i % chs.length] as string, data: { n: i } })),
  });
  return r.body.ids;
}

describe('demo dashboard', () => {
  it('loads, reaches live, and shows messages as they are published', async () => {
    const { page, errors } = await open('dash-load');
    const ids = await publish(6);
    await page.locator(`[data-testid=rows] tr[data-id="${ids[5]}"]`).waitFor();
    expect((await rowIds(page)).reverse()).toEqual(ids);
    expect(await counter(page, 'received')).toBe(6);
    await sleep(1200); // let the chart draw a second
    await shot(page, '1-live');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('offline, 200 published, online: exactly those 200 once each in id order, counted, then live again', async () => {
    const { page, errors } = await open('dash-offline');
    await page.getByTestId('offline').click();
    await page.getByTestId('state').filter({ hasText: 'offline' }).waitFor();
    const missed = await publish(200);
    await shot(page, '2-offline');
    await page.getByTestId('offline').click();
    await page
      .getByTestId('caught-up')
      .filter({ hasText: /caught up 200 messages in \d+ ms/ })
      .waitFor({ timeout: 15_000 });
    await live(page);
    expect((await rowIds(page)).reverse()).toEqual(missed);
    expect([
      await counter(page, 'received'),
      await counter(page, 'replayed'),
      await counter(page, 'gaps'),
      await counter(page, 'duplicates'),
    ]).toEqual([200, 200, 0, 0]);
    await shot(page, '3-caught-up');
    const [next] = await publish(1);
    const row = page.locator(`[data-testid=rows] tr[data-id="${next}"]`);
    await row.waitFor();
    expect(await row.locator('.tag').textContent()).toBe('live');
    expect(await counter(page, 'received')).toBe(201);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('a reload mid-stream shows no message twice and misses none', async () => {
    const { page, errors } = await open('dash-reload', '&record');
    const published: number[] = [];
    const feeding = (async () => {
      for (let i = 0; i < 30; i++) {
        published.push(...(await publish(5)));
        await sleep(30);
      }
    })();
    await until(() => published.length >= 50, 10_000, 'publishing under way');
    await page.reload();
    await feeding;
    await live(page);
    const last = published[published.length - 1];
    await page.waitForFunction((id) => (sessionStorage.getItem('dps.shown') ?? '').split(',').includes(String(id)), last, {
      timeout: 15_000,
    });
    const shown = await page.evaluate(() => (sessionStorage.getItem('dps.shown') ?? '').split(',').filter(Boolean).map(Number));
    expect(published).toHaveLength(150);
    expect(shown).toEqual(published);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('publishes from the form, and the pattern picker subscribes and unsubscribes', async () => {
    const { page, errors } = await open('dash-form', '', { width: 390, height: 844 });
    await page.getByTestId('pub-channel').fill('alerts.form');
    await page.getByTestId('pub-data').fill('{"n":7}');
    await page.getByTestId('publish').click();
    const note = await page
      .getByTestId('pub-note')
      .filter({ hasText: /stored as id \d+/ })
      .textContent();
    const id = Number(/(\d+)/.exec(note ?? '')?.[1]);
    const row = page.locator(`[data-testid=rows] tr[data-id="${id}"]`);
    await row.waitFor();
    expect(await row.locator('td').nth(1).textContent()).toBe('alerts.form');

    await page.getByTitle('unsubscribe prices.*').click();
    await page.getByTestId('pattern-input').fill('news.*');
    await page.getByTestId('subscribe').click();
    expect(await page.getByTestId('patterns').textContent()).toBe('orders.*×alerts.*×news.*×');
    // `sub` is live from the server's confirmation on: wait for it before publishing.
    await until(() => [...server.sessions].some((s) => s.recipient === 'dash-form' && s.patternList.includes('news.*')), 5000, 'the sub');
    const ids = await publish(3, ['prices.eth', 'news.today', 'orders.eu']);
    await page.locator(`[data-testid=rows] tr[data-id="${ids[2]}"]`).waitFor();
    expect((await rowIds(page)).reverse()).toEqual([id, ids[1], ids[2]]);
    await shot(page, '4-phone');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('"Block WebSocket" falls back to SSE and back, showing the transport, with every message once', async () => {
    const { page, errors } = await open('dash-block');
    const transport = (name: string) =>
      page
        .getByTestId('transport')
        .filter({ hasText: new RegExp(`^${name}$`) })
        .waitFor();
    await transport('websocket');
    const before = await publish(3);
    await page.locator(`[data-testid=rows] tr[data-id="${before[2]}"]`).waitFor();
    await page.getByTestId('block-ws').click();
    await transport('sse');
    await live(page);
    const onSse = await publish(20);
    await page.locator(`[data-testid=rows] tr[data-id="${onSse[19]}"]`).waitFor();
    // Publishing from the page goes over HTTP while on SSE.
    await page.getByTestId('pub-channel').fill('alerts.sse');
    await page.getByTestId('pub-data').fill('{"over":"sse"}');
    await page.getByTestId('publish').click();
    const note = await page
      .getByTestId('pub-note')
      .filter({ hasText: /stored as id \d+/ })
      .textContent();
    const fromPage = Number(/(\d+)/.exec(note ?? '')?.[1]);
    await page.locator(`[data-testid=rows] tr[data-id="${fromPage}"]`).waitFor();
    await shot(page, '5-sse');
    await page.getByTestId('block-ws').click();
    await transport('websocket');
    await live(page);
    const after = await publish(3);
    await page.locator(`[data-testid=rows] tr[data-id="${after[2]}"]`).waitFor();
    expect((await rowIds(page)).reverse()).toEqual([...before, ...onSse, fromPage, ...after]);
    expect(errors).toEqual([]);
    await page.close();
  });
});
