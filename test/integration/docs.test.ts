// The docs are run: every fenced block of README.md and docs/*.md runs against a real server (or says what covers it), every relative link resolves.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { freePort, loadConfig } from '@durable-pubsub/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchors, type Block, blocks, docPages, expectations, firstUnmet, ROOT, relativeLinks } from '../support/doc-blocks';
import { startTestRedis, startTestServer, type TestRedis, type TestServer } from '../support/env';

/** What a page's test server needs beyond the defaults (its blocks see these variables too). */
const PAGE_ENV: Record<string, Record<string, string>> = {
  'docs/security.md': { DPS_JWT_SECRET: 'a-secret-of-the-doc-test-at-least-32-bytes-long' },
};

const pages = docPages();
const all = pages.flatMap((p) => blocks(p));
const runs = all.filter((b): b is Block & { kind: 'run' } => b.kind === 'run');
const where = (b: Block) => `${b.page}:${b.line} (${b.info})`;
const EXT = { ts: 'ts', js: 'js', sh: 'sh', python: 'py' } as const;
const fileOf = (b: Block & { kind: 'run' }) => `${b.page.replace(/\W/g, '_')}_L${b.line}.${EXT[b.lang]}`;

const TMP = mkdtempSync(join(tmpdir(), 'dps-docs-'));
const GLOBALS = new URL('../support/doc-globals.ts', import.meta.url).pathname;
const TSC = `${ROOT}node_modules/.bin/tsc`;
/** tsc's errors, per block file (type-checked once, before any block runs). */
let typeErrors = new Map<string, string[]>();

beforeAll(async () => {
  // Blocks import the workspace's packages, as an app would: the test package's node_modules serve as theirs.
  symlinkSync(`${ROOT}test/node_modules`, join(TMP, 'node_modules'));
  writeFileSync(join(TMP, 'package.json'), '{"type":"module"}');
  mkdirSync(join(TMP, 'check'));
  mkdirSync(join(TMP, 'run'));
  const ts = runs.filter((b) => b.lang === 'ts');
  for (const b of ts) writeFileSync(join(TMP, 'check', fileOf(b)), `${b.code}\nexport {};\n`);
  writeFileSync(
    join(TMP, 'tsconfig.json'),
    JSON.stringify({
      extends: `${ROOT}tsconfig.base.json`,
      compilerOptions: { lib: ['ES2023', 'DOM'], types: ['node'], typeRoots: [`${ROOT}node_modules/@types`] },
      include: ['check/*.ts'],
    }),
  );
  const out = await new Promise<string>((resolve) => execFile(TSC, ['-p', TMP, '--pretty', 'false'], (_e, stdout) => resolve(stdout)));
  typeErrors = new Map();
  for (const line of out.split('\n')) {
    const m = /check\/([^(]+)\((\d+),\d+\): (error .*)$/.exec(line);
    if (m) typeErrors.set(m[1] as string, [...(typeErrors.get(m[1] as string) ?? []), `line ${m[2]}: ${m[3]}`]);
  }
}, 60_000);

afterAll(() => rmSync(TMP, { recursive: true, force: true }));

describe('the docs', () => {
  it('say of every fenced block what runs it, or why nothing does', () => {
    const bad = all.flatMap((b) => (b.kind === 'bad' ? [`${where(b)}: ${b.problem}`] : []));
    // A reason that names files of this repository names files that exist.
    for (const b of all)
      if (b.kind === 'no-run')
        for (const m of b.reason.matchAll(/(?<![\w/])((?:\.ci|test|server|client-sdk|demo-web|examples|docs)\/[\w./-]*\w)/g))
          if (!existsSync(ROOT + m[1])) bad.push(`${where(b)}: the reason names ${m[1]}, which does not exist`);
    expect(bad).toEqual([]);
  });

  it('quote excerpts that are, line by line and in order, in their files', () => {
    const bad: string[] = [];
    for (const b of all) {
      if (b.kind !== 'excerpt') continue;
      if (!existsSync(ROOT + b.of)) {
        bad.push(`${where(b)}: ${b.of} does not exist`);
        continue;
      }
      const file = readFileSync(ROOT + b.of, 'utf8')
        .split('\n')
        .map((l) => l.trim());
      let at = 0;
      for (const line of b.code.split('\n').map((l) => l.trim())) {
        if (!line || line === '// …') continue;
        const i = file.indexOf(line, at);
        if (i < 0) {
          bad.push(`${where(b)}: "${line}" is not in ${b.of} (after line ${at})`);
          break;
        }
        at = i + 1;
      }
    }
    expect(bad).toEqual([]);
  });

  it('link only to files and headings that exist', () => {
    const bad: string[] = [];
    for (const page of pages) {
      const text = readFileSync(ROOT + page, 'utf8');
      for (const { line, target } of relativeLinks(text)) {
        const [path = '', anchor] = target.split('#');
        const file = path ? normalize(join(dirname(page), path)) : page;
        if (!existsSync(ROOT + file)) bad.push(`${page}:${line}: ${target}: no ${file}`);
        else if (anchor && file.endsWith('.md') && !anchors(readFileSync(ROOT + file, 'utf8')).has(anchor))
          bad.push(`${page}:${line}: ${target}: no heading #${anchor} in ${file}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('list in docs/server.md every environment variable the server and its CLI read, with the option each sets', () => {
    const src = ['config.ts', 'serve.ts', 'cli.ts'].map((f) => readFileSync(`${ROOT}server/src/${f}`, 'utf8')).join('\n');
    const read = new Set([...src.matchAll(/\b((?:DPS|REDIS)_[A-Z0-9_]*[A-Z0-9])\b/g)].map((m) => m[1] as string));
    for (const v of ['PORT', 'HOST']) read.add(v);
    const rows = [...readFileSync(`${ROOT}docs/server.md`, 'utf8').matchAll(/^\| `((?:DPS|REDIS)_[A-Z0-9_]+|PORT|HOST)` +\| ([^|]*)\|/gm)];
    const documented = new Set(rows.map((m) => m[1] as string));
    expect([...read].filter((v) => !documented.has(v)).sort()).toEqual([]);
    expect([...documented].filter((v) => !read.has(v)).sort()).toEqual([]);
    // An option given as one name is the field of the settings that its variable sets.
    const base = loadConfig({}) as unknown as Record<string, unknown>;
    const wrong: string[] = [];
    for (const [, variable, cell] of rows) {
      const option = /^`(\w+)`$/.exec((cell as string).trim())?.[1];
      if (!option) continue;
      const sets = ['12345', 'everysec', 'off', 'redis://example:1', 'postgres://example/db', '1'].some((value) => {
        try {
          const c = loadConfig({ [variable as string]: value }) as unknown as Record<string, unknown>;
          return option in base && JSON.stringify(c[option]) !== JSON.stringify(base[option]);
        } catch {
          return false;
        }
      });
      if (!sets) wrong.push(`${variable} does not set ${option}`);
    }
    expect(wrong).toEqual([]);
  });
});

for (const page of pages) {
  const pageRuns = runs.filter((b) => b.page === page);
  if (!pageRuns.length) continue;
  describe(`the blocks of ${page}, in order, against one Redis and one server`, () => {
    let redis: TestRedis;
    let server: TestServer;
    beforeAll(async () => {
      redis = await startTestRedis();
      server = await startTestServer(redis.url, PAGE_ENV[page]);
    }, 30_000);
    afterAll(async () => {
      await server?.stop();
      await redis?.cleanup();
    });

    for (const b of pageRuns)
      it(`runs ${where(b)}`, async () => {
        expect(typeErrors.get(fileOf(b)) ?? [], 'type errors').toEqual([]);
        const port = b.ownPort ? await freePort() : server.port;
        const code = b.code.replace(/\b8080\b/g, String(port)).replace(/\b(?:localhost|127\.0\.0\.1):6379\b/g, `127.0.0.1:${redis.port}`);
        const file = join(TMP, 'run', fileOf(b));
        writeFileSync(file, b.lang === 'sh' ? SH_PRELUDE + code : code);
        const env: Record<string, string | undefined> = {
          ...process.env,
          PORT: String(port),
          REDIS_URL: redis.url,
          DPS_URL: undefined,
          ...PAGE_ENV[page],
        };
        const argv = {
          ts: [process.execPath, '--import', 'tsx', '--import', GLOBALS, file],
          js: [process.execPath, '--import', 'tsx', '--import', GLOBALS, file],
          sh: ['bash', file],
          python: ['/usr/bin/python3', file], // Debian's, with python3-redis
        }[b.lang];
        const r = await runBlock(argv, env, expectations(code));
        if (!r.ok) throw new Error(`${where(b)}: ${r.why}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
      });
  });
}

/**
 * Makes `curl` fail on an HTTP error and `redis-cli` use the page's Redis, as the docs' commands assume; `pnpm dps`
 * runs the root package.json's `dps` script itself, without pnpm's second of start-up.
 */
const DPS_SCRIPT = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')).scripts.dps as string;
const SH_PRELUDE = `set -euo pipefail
curl() { command curl --silent --show-error --fail-with-body "$@"; }
redis-cli() { command redis-cli -u "$REDIS_URL" "$@"; }
pnpm() { if [ "\${1-}" = dps ]; then shift; ${DPS_SCRIPT} "$@"; else command pnpm "$@"; fi; }
`;

/**
 * Runs a block in its own process group. It passes when it exits 0 having printed what it promises, or when it has
 * printed all of it and is still running 300 ms later (a server, a subscriber): then it is stopped.
 */
function runBlock(
  [cmd, ...args]: string[],
  env: Record<string, string | undefined>,
  expected: RegExp[],
): Promise<{ ok: boolean; why: string; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child: ChildProcess = spawn(cmd as string, args, { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let settled = false;
    const stop = () => {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {}
    };
    const finish = (ok: boolean, why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(grace);
      stop();
      resolve({ ok, why, stdout, stderr });
    };
    const unmet = () => firstUnmet(stdout, expected);
    let grace: NodeJS.Timeout | undefined;
    const deadline = setTimeout(() => {
      const i = unmet();
      finish(false, i < 0 ? 'still running after 25 s' : `after 25 s, has not printed ${expected[i]}`);
    }, 25_000);
    child.stdout?.on('data', (d) => {
      stdout += d;
      if (expected.length && !grace && unmet() < 0) grace = setTimeout(() => finish(true, ''), 300);
    });
    child.stderr?.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (code, signal) => {
      const i = unmet();
      if (code !== 0) finish(false, `exited with ${code ?? signal}`);
      else finish(i < 0, i < 0 ? '' : `exited without printing ${expected[i]}`);
    });
  });
}
