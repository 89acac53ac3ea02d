// The SDK in real Chromium: a page reloaded mid-stream processes exactly the messages it had not processed before.
import { describe, expect, it } from 'vitest';
import { withBrowser } from '../support/browser';
import { httpPublish, sleep, until, withServer } from '../support/env';

const ctx = withServer();

// The handler records each processed id in sessionStorage (which survives a reload) as it runs.
const PAGE = `<!doctype html><meta charset="utf-8"><title>sdk</title><script type="module">
  import { createClient } from '/sdk.js';
  const q = new URLSearchParams(location.search);
  const processed = JSON.parse(sessionStorage.getItem('processed') || '[]');
  const client = createClient({ url: q.get('ws'), recipient: q.get('recipient') });
  client.subscribe('feed.*', (m) => {
    processed.push(m.id);
    sessionStorage.setItem('processed', JSON.stringify(processed));
  });
  client.on('state', (e) => { window.dpsState = e.newState; });
  window.loads = Number(sessionStorage.getItem('loads') || 0) + 1;
  sessionStorage.setItem('loads', String(window.loads));
</script>`;

const web = withBrowser({ '/': PAGE });

describe('SDK in Chromium', () => {
  it('after a reload mid-stream the handler sees exactly the messages it had not processed', async () => {
    const page = await web.browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${web.pages.url}/?ws=${encodeURIComponent(ctx.server.wsUrl)}&recipient=reloader`);
    await page.waitForFunction(() => (window as { dpsState?: string }).dpsState === 'live');

    const published: number[] = [];
    const publishing = (async () => {
      for (let i = 0; i < 40; i++) {
        const r = await httpPublish(ctx.server, {
          messages: Array.from({ length: 5 }, (_, j) => ({ ch: `feed.${j % 2}`, data: i * 5 + j })),
        });
        published.push(...r.body.ids);
        await sleep(25);
      }
    })();
    await until(() => published.length >= 60, 10_000, 'publishing under way');
    await page.reload();
    await publishing;
    await page.waitForFunction(() => (window as { dpsState?: string }).dpsState === 'live');
    const last = published[published.length - 1];
    await page.waitForFunction((id) => JSON.parse(sessionStorage.getItem('processed') || '[]').includes(id), last, { timeout: 15_000 });
    const processed: number[] = await page.evaluate(() => JSON.parse(sessionStorage.getItem('processed') || '[]'));
    expect(await page.evaluate(() => (window as { loads?: number }).loads)).toBe(2);
    expect(published).toHaveLength(200);
    expect(processed).toEqual(published);
    expect(errors).toEqual([]);
    await page.close();
  });
});
