// Build of the published SDK: ESM bundles of the public entry, the tab relay, the SSE transport and the protocol module, with bundled .d.ts; no dependencies.
import { defineConfig } from 'tsdown';

export default defineConfig({
  entry: { index: 'src/index.ts', tabs: 'src/tabs.ts', sse: 'src/sse-socket.ts', protocol: 'src/protocol/index.ts' },
  format: 'esm',
  platform: 'browser',
  // What the Vite library build, which this replaces, targeted by default.
  target: 'baseline-widely-available',
  fixedExtension: false,
  dts: true,
  checks: { pluginTimings: false },
});
