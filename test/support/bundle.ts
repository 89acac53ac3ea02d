// Builds an entry module into one minified ESM file with Vite, in memory (bundle sizes, browser tests).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build, type Rolldown } from 'vite';

const HERE = new URL('.', import.meta.url).pathname;

/**
 * Bundles `source` (an ES module resolved from test/) and returns the code. `minify: 'full'` also removes whitespace,
 * as an app's build does: Vite's library builds of ES modules keep it (minify there only mangles and compresses).
 */
export async function bundle(source: string, opts: { minify?: boolean | 'full' } = {}): Promise<string> {
  // Inside test/ so that bare imports resolve from the test package's dependencies.
  const dir = mkdtempSync(join(HERE, '.bundle-'));
  try {
    const entry = join(dir, 'entry.ts');
    writeFileSync(entry, source);
    const out = await build({
      configFile: false,
      logLevel: 'silent',
      root: dir,
      build: {
        write: false,
        minify: opts.minify !== false,
        lib: { entry, formats: ['es'], fileName: 'bundle' },
        ...(opts.minify === 'full' ? { rolldownOptions: { output: { minify: true } } } : {}),
      },
    });
    const results = (Array.isArray(out) ? out : [out]) as Rolldown.RolldownOutput[];
    for (const o of results[0]?.output ?? []) if (o.type === 'chunk') return o.code;
    throw new Error('no chunk built');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
