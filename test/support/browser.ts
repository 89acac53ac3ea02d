// Real Chromium (Debian's /usr/bin/chromium) via Playwright, and a static server for test pages that load the SDK bundle.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { bundle } from './bundle';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

export interface PageServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `/sdk.js`, `/tabs.js` and `/sse.js` (the SDK's main entry, its tab relay's and its SSE transport's, each bundled by Vite) and the given pages. */
export async function servePages(pages: Record<string, string>): Promise<PageServer> {
  const scripts: Record<string, string> = {
    '/sdk.js': await bundle("export * from '@durable-pubsub/client-sdk';", { minify: false }),
    '/tabs.js': await bundle("export * from '@durable-pubsub/client-sdk/tabs';", { minify: false }),
    '/sse.js': await bundle("export * from '@durable-pubsub/client-sdk/sse';", { minify: false }),
  };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    const script = scripts[path];
    if (script !== undefined) {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      return void res.end(script);
    }
    const page = pages[path];
    if (page === undefined) {
      res.writeHead(404);
      return void res.end();
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** Chromium and a page server for one test file, started before its tests and closed after them. */
export function withBrowser(pageMap: Record<string, string>): { browser: Browser; pages: PageServer } {
  const ctx = {} as { browser: Browser; pages: PageServer };
  beforeAll(async () => {
    ctx.browser = await launchChromium();
    ctx.pages = await servePages(pageMap);
  });
  afterAll(async () => {
    await ctx.browser?.close();
    await ctx.pages?.close();
  });
  return ctx;
}
