// The SDK in real Chromium with WebSockets blocked: it falls back to SSE and processes every message exactly once, across a reload mid-stream.
import { describe, expect, it } from 'vitest';
import { withBrowser } from '../support/browser';
import { httpPublish, sleep, until, withServer } from '../support/env';

const ctx = withServer();

// A page whose WebSocket cannot be made (as under a policy that blocks it). The handler records each processed id in
// sessionStorage (which survives a reload) as it runs; positions stay in localStorage, the SDK's default.
const PAGE = `<!doctype html><meta charset="utf-8"><title>sdk over sse</title><script type="module">
  import { createClient } from '/sdk.js';
  import { SseSocket } from '/sse.js';
  window.wsAttempts = 0;
  window.WebSocket = class {
    constructor() {
      window.wsAttempts++;
      throw new Error('WebSockets are blocked here');
    }
  };
  const q = new URLSearchParams(location.search);
  const processed = JSON.parse(sessionStorage.getItem('processed') || '[]');
  const client = createClient({ url: q.get('ws'), recipient: q.get('recipient'), sse: SseSocket });
  client.subscribe('feed.*', (m) => {
    processed.push(m.id);
    sessionStorage.setItem('processed', JSON.stringify(processed));
  });
  client.on('state', (e) => {
    window.dpsState = e.newState;
    window.dpsTransport = client.transport;
  });
  client.on('error', (e) => { (window.dpsErrors ??= []).push(e.code); });
  window.loads = Number(sessionStorage.getItem('loads') || 0) + 1;
  sessionStorage.setItem('loads', String(window.loads));
</script>`;

const web = withBrowser({ '/': PAGE });

interface PageGlobals {
  dpsState?: string;
  dpsTransport?: string | null;
  dpsErrors?: string[];
  wsAttempts?: number;
  loads?: number;
}

describe('SDK in Chromium with WebSockets blocked', () => {
  it('falls back to SSE and, across a reload mid-stream, processes every message exactly once', async () => {
    const page = await web.browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${web.pages.url}/?ws=${encodeURIComponent(ctx.server.wsUrl)}&recipient=sse-reloader`);
    await page.waitForFunction(() => (window as PageGlobals).dpsState === 'live');
    expect(await page.evaluate(() => (window as PageGlobals).dpsTransport)).toBe('sse');

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
    await page.waitForFunction(() => (window as PageGlobals).dpsState === 'live');
    const last = published[published.length - 1];
    await page.waitForFunction((id) => JSON.parse(sessionStorage.getItem('processed') || '[]').includes(id), last, { timeout: 15_000 });
    const processed: number[] = await page.evaluate(() => JSON.parse(sessionStorage.getItem('processed') || '[]'));
    expect(published).toHaveLength(200);
    expect(processed).toEqual(published);
    // The position the page resumes from is in localStorage, saved once its handler had processed the last message.
    const key = `dps:${ctx.server.wsUrl}|sse-reloader|["feed.*"]`;
    await page.waitForFunction(([k, id]) => JSON.parse(localStorage.getItem(k as string) || 'null')?.lastAckedId === id, [
      key,
      last,
    ] as const);
    const after = await page.evaluate(() => {
      const w = window as PageGlobals;
      return { loads: w.loads, transport: w.dpsTransport, errors: w.dpsErrors ?? [], triedWebSocket: (w.wsAttempts ?? 0) > 0 };
    });
    expect(after).toEqual({ loads: 2, transport: 'sse', errors: [], triedWebSocket: true });
    expect(errors).toEqual([]);
    await page.close();
  });
});
