// Build of the published server package: ESM bundles of the public entry and the CLI, bundled .d.ts, and the Lua scripts.
import { defineConfig } from 'tsdown';

export default defineConfig({
  entry: { index: 'src/index.ts', cli: 'src/cli.ts' },
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  fixedExtension: false,
  dts: true,
  // scripts.ts reads lua/ beside the module that holds it, and functions/ beside lua/: in the bundle that module is a
  // chunk at the top of dist/, so the scripts go to dist/lua and dist/functions.
  copy: [
    { from: 'src/redis/lua', to: 'dist' },
    { from: 'src/redis/functions', to: 'dist' },
  ],
  // The `durable-pubsub` bin. (Rolldown's own option: tsdown's `banner` calls a function for the first chunk only.)
  outputOptions: { banner: (chunk) => (chunk.fileName === 'cli.js' ? '#!/usr/bin/env node' : '') },
  checks: { pluginTimings: false },
});
