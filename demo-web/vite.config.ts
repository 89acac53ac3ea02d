// Builds the dashboard into dist/, which the server serves at / in demo mode (`pnpm start`).
import { defineConfig } from 'vite';

export default defineConfig({
  build: { outDir: 'dist', emptyOutDir: true },
  server: { proxy: { '/ws': { target: 'ws://127.0.0.1:8080', ws: true }, '/v1': 'http://127.0.0.1:8080' } },
});
