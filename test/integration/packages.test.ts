// The packed packages as published: built code, declarations and Lua only, and clean under publint and arethetypeswrong.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Packed, packPackages, REPO, tarballSizes } from '../support/packages';

const run = promisify(execFile);
let dir: string;
let packed: Packed;

/** Runs a tool of the workspace (offline: devDependencies), prints what it said, and returns its exit code. */
async function tool(name: string, args: string[]): Promise<number> {
  const r = await run(join(REPO, 'node_modules/.bin', name), args, { encoding: 'utf8' }).then(
    (ok) => ({ code: 0, ...ok }),
    (err: { code?: number; stdout?: string; stderr?: string }) => ({
      code: err.code ?? 1,
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? '',
    }),
  );
  console.log(`$ ${name} ${args.join(' ')}\n${r.stdout}${r.stderr}`);
  return r.code;
}

/** The files in a tarball, and its package.json. */
async function contents(tarball: string): Promise<{ files: string[]; manifest: Record<string, any> }> {
  const list = (await run('tar', ['-tzf', tarball], { encoding: 'utf8' })).stdout;
  const manifest = JSON.parse((await run('tar', ['-xOzf', tarball, 'package/package.json'], { encoding: 'utf8' })).stdout);
  return { files: list.trim().split('\n').sort(), manifest };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dps-packages-'));
  packed = await packPackages(dir);
  console.log(packed.output);
  for (const [name, tarball] of Object.entries({ sdk: packed.sdk, server: packed.server })) {
    const s = tarballSizes(tarball);
    console.log(`${name}: ${s.files} files, packed ${s.packed} B, unpacked ${s.unpacked} B`);
  }
}, 180_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the packed packages', () => {
  it('publish the built server, its declarations and every Lua script, with plain-node entries and no sources', async () => {
    const { files, manifest } = await contents(packed.server);
    const lua = readdirSync(join(REPO, 'server/src/redis/lua'), { recursive: true, withFileTypes: true })
      .filter((f) => f.isFile())
      .map((f) => join('package/dist/lua', f.parentPath.slice(join(REPO, 'server/src/redis/lua').length), f.name));
    expect(files.filter((f) => f.endsWith('.lua')).sort()).toEqual([...lua, 'package/dist/functions/dps.lua'].sort());
    expect(files.filter((f) => !f.startsWith('package/dist/') && f !== 'package/package.json')).toEqual([]);
    expect(files).toContain('package/dist/index.d.ts');
    expect(manifest.exports).toEqual({
      '.': { types: './dist/index.d.ts', default: './dist/index.js' },
      './package.json': './package.json',
    });
    expect(manifest.bin).toEqual({ 'durable-pubsub': './dist/cli.js' });
    expect(manifest.private).toBeUndefined();
    expect(manifest.dependencies.tsx).toBeUndefined();
    expect(JSON.stringify(manifest.dependencies)).not.toContain('workspace:');
    // the SDK as a dependency of the version packed beside it
    expect(manifest.dependencies['@durable-pubsub/client-sdk']).toBe((await contents(packed.sdk)).manifest.version);
  });

  it('publish the SDK as ESM with bundled declarations, no dependencies', async () => {
    const { files, manifest } = await contents(packed.sdk);
    expect(files.filter((f) => !f.startsWith('package/dist/') && f !== 'package/package.json')).toEqual([]);
    expect(Object.keys(manifest.exports)).toEqual(['.', './tabs', './sse', './protocol', './package.json']);
    for (const entry of ['index', 'tabs', 'sse', 'protocol']) {
      expect(files).toContain(`package/dist/${entry}.js`);
      expect(files).toContain(`package/dist/${entry}.d.ts`);
    }
    expect([manifest.private, manifest.dependencies]).toEqual([undefined, undefined]);
  });

  it('pass publint --strict', async () => {
    for (const tarball of [packed.sdk, packed.server])
      expect([tarball, await tool('publint', ['run', '--strict', tarball])]).toEqual([tarball, 0]);
  });

  // ESM only: node10 cannot see `exports`, and require() of ESM is Node's (>= 20.19), not these types' concern.
  it('pass arethetypeswrong for node16 from ESM and bundlers (the esm-only profile)', async () => {
    for (const tarball of [packed.sdk, packed.server])
      expect([tarball, await tool('attw', ['--profile', 'esm-only', '--no-color', '--format', 'ascii', tarball])]).toEqual([tarball, 0]);
  });
});
