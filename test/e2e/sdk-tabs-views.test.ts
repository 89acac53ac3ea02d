// shareAcrossTabs in real Chromium with two tabs on two views (different patterns, one recipient): a tab that was
// closed gets back exactly what was published for its view meanwhile, whichever tab leads, and nothing twice.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { withBrowser } from '../support/browser';
import { httpPublish, sleep, until, withServer } from '../support/env';

const ctx = withServer();

const PAGE = `<!doctype html><meta charset="utf-8"><title>views</title><script type="module">
  import { createClient } from '/sdk.js';
  import { tabRelay } from '/tabs.js';
  const q = new URLSearchParams(location.search);
  window.seen = [];
  // tabRelay as an app passes it, wrapped only to keep the relay where the test reads its role.
  window.client = createClient({ url: q.get('ws'), recipient: 'viewer', shareAcrossTabs: (host) => (window.relay = tabRelay(host)), ackInterval: 50 });
  window.client.subscribe('tv.' + q.get('view') + '.*', (m) => { window.seen.push(m.id); });
</script>`;

const web = withBrowser({ '/': PAGE });

type W = { client: { state: string }; relay: { role: string }; seen: number[] };
const seen = (p: Page): Promise<number[]> => p.evaluate(() => (window as unknown as W).seen);
const role = (p: Page) => p.evaluate(() => (window as unknown as W).relay.role);
const sockets = () => [...ctx.server.sessions].filter((s) => s.recipient === 'viewer' && !s.closed).length;

async function publish(view: string, n: number): Promise<number[]> {
  const r = await httpPublish(ctx.server, { messages: Array.from({ length: n }, (_, i) => ({ ch: `tv.${view}.${i % 2}`, data: i })) });
  return r.body.ids;
}

describe('shareAcrossTabs with a view per tab', () => {
  it('a tab closed and reopened gets exactly what its view missed, led by either tab', async () => {
    const context = await web.browser.newContext();
    const url = (view: string) => `${web.pages.url}/?ws=${encodeURIComponent(ctx.server.wsUrl)}&view=${view}`;
    const open = async (view: string) => {
      const p = await context.newPage();
      await p.goto(url(view));
      await p.waitForFunction(() => (window as unknown as W).client.state === 'live');
      return p;
    };
    const a = await open('a');
    const b = await open('b');
    expect([await role(a), await role(b)]).toEqual(['leader', 'follower']);
    expect(sockets()).toBe(1);

    const a1 = await publish('a', 10);
    const b1 = await publish('b', 10);
    await until(async () => (await seen(a)).length === 10 && (await seen(b)).length === 10, 10_000, 'both views');
    expect(await seen(a)).toEqual(a1);
    expect(await seen(b)).toEqual(b1);

    // The follower's view goes away; its messages keep coming and the leader keeps acking its own.
    await sleep(200); // b's processed position reaches the leader (ackInterval 50)
    await b.close({ runBeforeUnload: true });
    const b2 = await publish('b', 10);
    const a2 = await publish('a', 5);
    await until(async () => (await seen(a)).length === 15, 10_000, 'the leader');
    await sleep(300); // acks of the leader's own view go out meanwhile
    // The leader acks for the tabs it serves no further than the lowest of their positions: b2 stays stored.
    await ctx.server.janitor.runOnce(true);
    const stored = async (ch: string) => (await ctx.redis.client.zrange(`dps:{default}:ch:${ch}`, '0', '-1')).map((f) => JSON.parse(f).id);
    expect([...(await stored('tv.b.0')), ...(await stored('tv.b.1'))].sort((x, y) => x - y)).toEqual(b2);

    const b3 = await open('b'); // back: its saved position is behind the socket, so the socket resumes from it
    await until(async () => (await seen(b3)).length === 10, 10_000, 'the missed view b');
    expect(await seen(b3)).toEqual(b2);
    expect(await seen(a)).toEqual([...a1, ...a2]); // nothing twice for the leader's view
    expect(await role(b3)).toBe('follower');
    await until(() => sockets() === 1, 5000, 'one socket');

    // Now the leader's view goes away: b takes over, and a, reopened, gets what it missed.
    await a.close({ runBeforeUnload: true });
    const a3 = await publish('a', 7);
    const b4 = await publish('b', 3);
    await b3.waitForFunction(() => (window as unknown as W).relay.role === 'leader', undefined, { timeout: 10_000 });
    await until(async () => (await seen(b3)).length === 13, 10_000, 'the new leader');
    const a4 = await open('a');
    await until(async () => (await seen(a4)).length === 7, 10_000, 'the missed view a');
    await sleep(300);
    expect(await seen(a4)).toEqual(a3);
    expect(await seen(b3)).toEqual([...b2, ...b4]);
    await until(() => sockets() === 1, 5000, 'one socket');
    await context.close();
  });
});
