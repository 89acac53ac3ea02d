// Bundle size of the SDK (its main entry, and with the tab relay's or the SSE transport's entry) against centrifuge and socket.io-client, each built the same way (Vite, minified ESM, gzip).
// usage: pnpm bench:size
import { gzipSync } from 'node:zlib';
import { bundle } from '../support/bundle';

const entries: [string, string][] = [
  ['durable-pubsub client-sdk', "export { createClient } from '@durable-pubsub/client-sdk';"],
  [
    '  + tabs (shareAcrossTabs)',
    "export { createClient } from '@durable-pubsub/client-sdk'; export { tabRelay } from '@durable-pubsub/client-sdk/tabs';",
  ],
  [
    '  + sse (SseSocket)',
    "export { createClient } from '@durable-pubsub/client-sdk'; export { SseSocket } from '@durable-pubsub/client-sdk/sse';",
  ],
  ['centrifuge', "export { Centrifuge } from 'centrifuge';"],
  ['socket.io-client', "export { io } from 'socket.io-client';"],
];

/** bytes of code and of its gzip -9 */
const sizes = (code: string) => ({ min: code.length, gz: gzipSync(code, { level: 9 }).length });
const rows: { name: string; lib: { min: number; gz: number }; app: { min: number; gz: number } }[] = [];
for (const [name, source] of entries)
  rows.push({ name, lib: sizes(await bundle(source)), app: sizes(await bundle(source, { minify: 'full' })) });
const sdk = rows[0] as (typeof rows)[number];
const kb = (n: number, digits: number) => `${(n / 1024).toFixed(digits)} KB`;
// Two builds: Vite's library build (how this table was always measured; ES library builds keep whitespace) and the
// same fully minified, as an app's build ships it. The SDK's budget, 5 KB gzip, is for what apps ship.
console.log('\nbundle size (Vite, ESM; gzip -9): library build (whitespace kept) | fully minified, as an app ships it');
console.log(
  `  ${'package'.padEnd(28)} ${'lib min'.padStart(9)} ${'lib gz'.padStart(9)} ${'bytes'.padStart(6)} | ${'app min'.padStart(9)} ${'app gz'.padStart(9)} ${'bytes'.padStart(6)} ${'vs SDK'.padStart(7)}`,
);
for (const r of rows)
  console.log(
    `  ${r.name.padEnd(28)} ${kb(r.lib.min, 1).padStart(9)} ${kb(r.lib.gz, 2).padStart(9)} ${String(r.lib.gz).padStart(6)} | ${kb(r.app.min, 1).padStart(9)} ${kb(r.app.gz, 2).padStart(9)} ${String(r.app.gz).padStart(6)} ${`${(r.app.gz / sdk.app.gz).toFixed(1)}×`.padStart(7)}`,
  );
