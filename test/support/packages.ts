// The publishable packages as users get them: packed by pnpm (prepack builds them), installed by plain npm outside the repository.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';

const run = promisify(execFile);

export const REPO = new URL('../../', import.meta.url).pathname;

/**
 * npm's cache for installing the packed packages: `pnpm warm:npm` fills it online (CI runs it after `pnpm install`),
 * tests install from it with --offline, so that nothing is downloaded while tests run.
 */
export const NPM_CACHE = process.env.DPS_NPM_CACHE || join(homedir(), '.cache', 'dps-npm');

export interface Packed {
  sdk: string;
  server: string;
  /** what `pnpm pack` printed, both packages */
  output: string;
}

/** The environment for npm and node outside the repository: without what pnpm and vitest export to their children. */
export function outsideEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^npm_/i.test(k) || k === 'NODE_OPTIONS' || k.startsWith('VITEST')) delete env[k];
  return env;
}

const LOCK = join(REPO, 'node_modules', '.dps-build-lock');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function holderAlive(): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(join(LOCK, 'pid'), 'utf8'));
  } catch {
    // just taken, its pid being written; or left so by a process killed right then
    const taken = statSync(LOCK, { throwIfNoEntry: false });
    return taken !== undefined && Date.now() - taken.mtimeMs < 10_000;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `fn` holding a lock that every test process shares: builds write server/dist and client-sdk/dist in place, and
 * a build cleans dist/ first, so a second build at the same time would pull files from under a pack.
 */
export async function withBuildLock<T>(fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
      if (!holderAlive()) rmSync(LOCK, { recursive: true, force: true });
      else await sleep(200);
    }
  }
  writeFileSync(join(LOCK, 'pid'), String(process.pid));
  try {
    return await fn();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

/** `pnpm pack` of client-sdk and server into `dir` (their prepack builds them): sdk.tgz and server.tgz. */
export function packPackages(dir: string): Promise<Packed> {
  mkdirSync(dir, { recursive: true });
  return withBuildLock(async () => {
    let output = '';
    const out: Record<string, string> = {};
    for (const pkg of ['client-sdk', 'server']) {
      const tarball = join(dir, `${pkg === 'client-sdk' ? 'sdk' : pkg}.tgz`);
      const r = await run('pnpm', ['pack', '--out', tarball], { cwd: join(REPO, pkg), encoding: 'utf8', maxBuffer: 16 << 20 });
      output += r.stdout + r.stderr;
      out[pkg] = tarball;
    }
    return { sdk: out['client-sdk'] as string, server: out.server as string, output };
  });
}

/** A tarball's size and the size of the files in it (what `npm pack` calls package size and unpacked size). */
export function tarballSizes(tarball: string): { packed: number; unpacked: number; files: number } {
  const tar = gunzipSync(readFileSync(tarball));
  let unpacked = 0;
  let files = 0;
  for (let at = 0; at + 512 <= tar.length && tar[at] !== 0; ) {
    const size = Number.parseInt(
      tar
        .subarray(at + 124, at + 136)
        .toString('latin1')
        .replace(/\0.*$/s, '')
        .trim() || '0',
      8,
    );
    const type = String.fromCharCode(tar[at + 156] as number);
    if (type === '0' || type === '\0') {
      unpacked += size;
      files++;
    }
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return { packed: statSync(tarball).size, unpacked, files };
}

/** What the packed app installs: both tarballs, and ws in the server's own range (so that npm installs one copy). */
export function appInstallSpecs(p: Packed): string[] {
  const server = JSON.parse(readFileSync(join(REPO, 'server/package.json'), 'utf8'));
  return [p.sdk, p.server, `ws@${server.dependencies.ws}`];
}

/**
 * An empty app in `dir` (`npm init -y`, "type": "module") with `specs` installed by npm through NPM_CACHE: online
 * when warming the cache, --offline in tests (then a cold cache fails with the command that warms it).
 */
export async function createApp(dir: string, specs: string[], opts: { offline: boolean }): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const env = outsideEnv();
  await run('npm', ['init', '-y'], { cwd: dir, env });
  const pkgFile = join(dir, 'package.json');
  writeFileSync(pkgFile, `${JSON.stringify({ ...JSON.parse(readFileSync(pkgFile, 'utf8')), type: 'module' }, null, 2)}\n`);
  const args = ['install', '--no-audit', '--no-fund', '--cache', NPM_CACHE, ...(opts.offline ? ['--offline'] : []), ...specs];
  try {
    await run('npm', args, { cwd: dir, env, encoding: 'utf8', maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    const said = `${e.stdout ?? ''}${e.stderr ?? ''}`;
    if (opts.offline && said.includes('ENOTCACHED'))
      throw new Error(
        `npm's cache ${NPM_CACHE} lacks what the packed packages need (tests download nothing): run \`pnpm warm:npm\` once online (CI: .ci/run does), again after changing the server's or SDK's dependencies\n\n${said}`,
      );
    throw new Error(`npm ${args.join(' ')} failed in ${dir}\n\n${said || e.message}`);
  }
}
