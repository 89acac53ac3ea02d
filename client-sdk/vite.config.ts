// Library build of the SDK: ESM bundles of the public entry, the tab relay and the protocol module, no dependencies.
import { defineConfig } from 'vite';

export default defineConfig({
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    lib: { entry: { index: 'src/index.ts', tabs: 'src/tabs.ts', protocol: 'src/protocol/index.ts' }, formats: ['es'] },
  },
});
