// shareAcrossTabs in real Chromium: two tabs, one socket; close the leader (its page, or its client) and the other takes over with no gap.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { withBrowser } from '../support/browser';
import { httpPublish, sleep, until, withServer } from '../support/env';

const ctx = withServer();

const PAGE = `<!doctype html><meta charset="utf-8"><title>tabs</title><script type="module">
  import { createClient } from '/sdk.js';
  import { tabRelay } from '/tabs.js';
  const q = new URLSearchParams(location.search);
  window.seen = [];
  window.states = [];
  // tabRelay as an app passes it, wrapped only to keep the relay where the test reads its role.
  window.client = createClient({ url: q.get('ws'), recipient: q.get('recipient'), shareAcrossTabs: (host) => (window.relay = tabRelay(host)) });
  window.client.subscribe('tabs.*', (m) => { window.seen.push(m.id); });
  window.client.on('state', (e) => { window.states.push(e.newState); });
</script>`;

const web = withBrowser({ '/': PAGE });

const role = (p: Page) => p.evaluate(() => (window as unknown as { relay: { role: string } }).relay.role);
const seen = (p: Page): Promise<number[]> => p.evaluate(() => (window as unknown as { seen: number[] }).seen);
const states = (p: Page): Promise<string[]> => p.evaluate(() => (window as unknown as { states: string[] }).states);
const live = (p: Page) => p.waitForFunction(() => (window as unknown as { client: { state: string } }).client.state === 'live');
const sockets = (recipient = 'tabber') => [...ctx.server.sessions].filter((s) => s.recipient === recipient && !s.closed).length;

async function publish(n: number): Promise<number[]> {
  const r = await httpPublish(ctx.server, { messages: Array.from({ length: n }, (_, i) => ({ ch: `tabs.${i % 3}`, data: i })) });
  return r.body.ids;
}

describe('shareAcrossTabs in Chromium', () => {
  it('two tabs share one socket, both get everything, and the follower takes over when the leader closes', async () => {
    const context = await web.browser.newContext();
    const url = `${web.pages.url}/?ws=${encodeURIComponent(ctx.server.wsUrl)}&recipient=tabber`;
    const a = await context.newPage();
    await a.goto(url);
    await a.waitForFunction(() => (window as unknown as { client: { state: string } }).client.state === 'live');
    const b = await context.newPage();
    await b.goto(url);
    await b.waitForFunction(() => (window as unknown as { client: { state: string } }).client.state === 'live');
    expect([await role(a), await role(b)]).toEqual(['leader', 'follower']);
    expect(sockets()).toBe(1);

    const first = await publish(30);
    await until(async () => (await seen(a)).length === 30 && (await seen(b)).length === 30, 10_000, 'both tabs');
    expect(await seen(a)).toEqual(first);
    expect(await seen(b)).toEqual(first);

    // The leader goes away while messages keep coming.
    const during = publish(20);
    await a.close({ runBeforeUnload: true });
    const second = [...(await during), ...(await publish(20))];
    await b.waitForFunction(() => (window as unknown as { relay: { role: string } }).relay.role === 'leader', undefined, {
      timeout: 10_000,
    });
    await until(async () => (await seen(b)).length >= 70, 15_000, 'the new leader to catch up');
    await sleep(200);
    expect(await seen(b)).toEqual([...first, ...second]);
    await until(() => sockets() === 1, 5000, 'one socket again');
    await context.close();
  });

  it('a leader whose client is closed says so and hands the socket over; the other tab is not told it is closed', async () => {
    const context = await web.browser.newContext();
    const url = `${web.pages.url}/?ws=${encodeURIComponent(ctx.server.wsUrl)}&recipient=closer`;
    const errors: string[] = [];
    const a = await context.newPage();
    a.on('pageerror', (e) => errors.push(String(e)));
    await a.goto(url);
    await live(a);
    const b = await context.newPage();
    await b.goto(url);
    await live(b);
    expect([await role(a), await role(b)]).toEqual(['leader', 'follower']);

    // Closing posts nothing on the closed channel (it threw InvalidStateError before the `closed` state was emitted).
    const closing = await a.evaluate(() => {
      try {
        (window as unknown as { client: { close(): void } }).client.close();
        return 'returned';
      } catch (e) {
        return String(e);
      }
    });
    expect([closing, (await states(a)).at(-1)]).toEqual(['returned', 'closed']);
    await b.waitForFunction(() => (window as unknown as { relay: { role: string } }).relay.role === 'leader', undefined, {
      timeout: 10_000,
    });
    await live(b);
    const ids = await publish(5);
    await until(async () => (await seen(b)).slice(-5).join() === ids.join(), 10_000, 'the new leader to deliver');
    expect(await states(b)).not.toContain('closed');
    expect(errors).toEqual([]);
    await until(() => sockets('closer') === 1, 5000, 'one socket');
    await context.close();
  });
});
