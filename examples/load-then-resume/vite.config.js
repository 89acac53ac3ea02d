// `vite` proxies the app's routes and /ws to server.mjs on PORT (default 3000); `vite build` writes dist/, which server.mjs serves.
import { defineConfig } from 'vite';

const server = `127.0.0.1:${process.env.PORT ?? 3000}`;

export default defineConfig({
  server: {
    proxy: {
      '/ws': { target: `ws://${server}`, ws: true },
      '/state': `http://${server}`,
      '/items': `http://${server}`,
      '/v1': `http://${server}`,
    },
  },
});
