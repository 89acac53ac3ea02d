// `pnpm start` as a newcomer runs it: builds the dashboard, starts Redis, server and feed, prints a URL that shows live data.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@durable-pubsub/server';
import { afterAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/browser';
import { processAlive, until } from '../support/env';

const ROOT = new URL('../../', import.meta.url).pathname;
const SHOTS = new URL('./screenshots/', import.meta.url).pathname;
const dataDir = mkdtempSync(join(tmpdir(), 'dps-start-'));
let child: ChildProcess | undefined;

afterAll(() => {
  child?.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('pnpm start', () => {
  it('prints a URL whose dashboard goes live and shows the demo feed; SIGTERM leaves nothing running', async () => {
    const port = await freePort();
    // detached: SIGTERM goes to the whole process group (pnpm, the build, the server, its redis-server)
    child = spawn('pnpm', ['start'], {
      cwd: ROOT,
      env: { ...process.env, PORT: String(port), DPS_DATA_DIR: dataDir, REDIS_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    child.stdout?.on('data', (d) => {
      out += d;
    });
    child.stderr?.on('data', (d) => {
      out += d;
    });
    await until(() => /Demo dashboard: (http:\S+)/.test(out), 60_000, 'the printed URL');
    const url = /Demo dashboard: (http:\S+)/.exec(out)?.[1] as string;
    expect(url).toBe(`http://127.0.0.1:${port}/`);
    // One worker process per core (DPS_WORKERS unset), and still the one URL.
    expect(out.match(/Demo dashboard:/g)?.length).toBe(1);

    const browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url);
    await page
      .getByTestId('state')
      .filter({ hasText: /^live$/ })
      .waitFor({ timeout: 15_000 });
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=rows] tr[data-id]').length >= 8, undefined, {
      timeout: 15_000,
    });
    const channels = await page.$$eval('[data-testid=rows] tr[data-id] td:nth-child(2)', (tds) =>
      [...new Set(tds.map((td) => td.textContent?.split('.')[0]))].sort(),
    );
    // The feed interleaves orders and prices on every tick; an alerts heartbeat comes every 5 s and may be among them.
    expect(channels.filter((c) => c !== 'alerts')).toEqual(['orders', 'prices']);
    await page.waitForTimeout(1500);
    await page.screenshot({ path: `${SHOTS}0-pnpm-start.png` });
    expect(errors).toEqual([]);
    await browser.close();

    // Ctrl-C in a terminal signals the whole process group: afterwards nothing of it may be left running.
    const redisPid = Number(readFileSync(join(dataDir, 'redis.pid'), 'utf8'));
    expect(existsSync(`/proc/${redisPid}`)).toBe(true);
    const exited = new Promise((r) => child?.once('exit', r));
    process.kill(-(child.pid as number), 'SIGTERM');
    await exited;
    await until(() => !processAlive(redisPid), 10_000, 'redis-server to stop');
    const workers = [...out.matchAll(/"pid":(\d+)[^\n]*"msg":"worker is serving"/g)].map((m) => Number(m[1]));
    await until(() => !workers.some(processAlive), 10_000, 'the workers to stop');
    expect(out).toContain('"msg":"stopping"');
  });
});
