// The SDK as published: the built ESM (dist/) with its types, no runtime dependencies, working in plain Node.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { httpPublish, withServer } from '../support/env';
import { withBuildLock } from '../support/packages';

const ctx = withServer();
const SDK = new URL('../../client-sdk/', import.meta.url).pathname;

describe('the built SDK package', () => {
  it('builds to ESM plus declarations and delivers a message in plain Node with no dependency of its own', async () => {
    // Held until the script has run: another test's build cleans dist/ first.
    const { stdout: out } = await withBuildLock(async () => {
      execFileSync('pnpm', ['run', 'build'], { cwd: SDK, stdio: 'pipe' });
      const pkg = JSON.parse(readFileSync(`${SDK}package.json`, 'utf8'));
      expect(pkg.dependencies ?? {}).toEqual({});
      for (const entry of ['index', 'tabs', 'sse', 'protocol'])
        for (const f of [`dist/${entry}.js`, `dist/${entry}.d.ts`]) expect([f, existsSync(SDK + f)]).toEqual([f, true]);
      const dist = readFileSync(`${SDK}dist/index.js`, 'utf8');
      expect(dist.match(/^import .* from ["']([^.][^"']*)["']/gm) ?? []).toEqual([]); // no bare imports

      const script = `
        import { createClient, memoryStorage } from ${JSON.stringify(`${SDK}dist/index.js`)};
        import WebSocket from 'ws';
        const c = createClient({ url: process.argv[1], recipient: 'dist-user', storage: memoryStorage(), WebSocket });
        c.subscribe('dist.*', (m) => { console.log(JSON.stringify([m.id, m.ch, m.data])); c.close(); });
        c.on('state', (e) => { if (e.newState === 'live') fetch(process.argv[2] + '/v1/publish', { method: 'POST', body: JSON.stringify({ ch: 'dist.x', data: 'hi' }) }); });
      `;
      // Async: the server under test runs in this process's event loop.
      return await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, ctx.server.wsUrl, ctx.server.url], {
        cwd: new URL('..', import.meta.url).pathname,
        encoding: 'utf8',
        timeout: 20_000,
      });
    });
    expect(out.trim()).toBe(JSON.stringify([1, 'dist.x', 'hi']));
    expect((await httpPublish(ctx.server, { ch: 'after', data: 1 })).body.id).toBe(2);
  });
});
