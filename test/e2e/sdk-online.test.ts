// The browser's `online` event makes a reconnecting client retry at once instead of waiting out its backoff.
import { describe, expect, it } from 'vitest';
import { withBrowser } from '../support/browser';
import { httpPublish, withServer } from '../support/env';

const ctx = withServer();

// A minimum backoff of a minute: only the online event can bring it back within the test.
const PAGE = `<!doctype html><meta charset="utf-8"><script type="module">
  import { createClient } from '/sdk.js';
  const q = new URLSearchParams(location.search);
  window.seen = [];
  window.states = [];
  window.client = createClient({ url: q.get('ws'), recipient: 'online-tab', backoffMin: 60000, backoffMax: 60000 });
  window.client.on('state', (e) => window.states.push(e.newState));
  window.client.subscribe('on.*', (m) => { window.seen.push(m.id); });
</script>`;

const web = withBrowser({ '/': PAGE });

describe('SDK online event', () => {
  it('retries immediately on online and catches up what was published meanwhile', async () => {
    const page = await web.browser.newPage();
    await page.goto(`${web.pages.url}/?ws=${encodeURIComponent(ctx.server.wsUrl)}`);
    await page.waitForFunction(() => (window as unknown as { client: { state: string } }).client.state === 'live');
    // The server drops it with a code that means "back off" (4508).
    for (const s of ctx.server.sessions) if (s.recipient === 'online-tab') s.close(4508, 'slow consumer');
    await page.waitForFunction(() => (window as unknown as { client: { state: string } }).client.state === 'reconnecting');
    const r = await httpPublish(ctx.server, {
      messages: [
        { ch: 'on.a', data: 1 },
        { ch: 'on.b', data: 2 },
      ],
    });
    const t0 = Date.now();
    await page.evaluate(() => window.dispatchEvent(new Event('online')));
    await page.waitForFunction(() => (window as unknown as { client: { state: string } }).client.state === 'live', undefined, {
      timeout: 5000,
    });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await page.evaluate(() => (window as unknown as { seen: number[] }).seen)).toEqual(r.body.ids);
    expect(await page.evaluate(() => (window as unknown as { states: string[] }).states)).toEqual([
      'catching-up',
      'live',
      'reconnecting',
      'catching-up',
      'live',
    ]);
    await page.close();
  });
});
