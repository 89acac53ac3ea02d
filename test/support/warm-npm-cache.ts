// Fills npm's cache for the packed-app test, online: packs both packages and installs them the way the test does.
// usage: pnpm warm:npm (CI runs it after pnpm install; again after changing the server's or SDK's dependencies)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appInstallSpecs, createApp, NPM_CACHE, packPackages } from './packages';

const dir = mkdtempSync(join(tmpdir(), 'dps-warm-npm-'));
try {
  const packed = await packPackages(join(dir, 'packs'));
  await createApp(join(dir, 'app'), appInstallSpecs(packed), { offline: false });
  console.log(`npm cache ready for the packed packages: ${NPM_CACHE}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
