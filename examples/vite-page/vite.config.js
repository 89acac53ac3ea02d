// `vite` proxies /ws to an example server on PORT (default 3000); `vite build` writes dist/.
import { defineConfig } from 'vite';

const server = `127.0.0.1:${process.env.PORT ?? 3000}`;

export default defineConfig({
  server: { proxy: { '/ws': { target: `ws://${server}`, ws: true } } },
});
