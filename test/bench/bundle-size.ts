// Bundle size of the SDK (its main entry, and with the tab relay's entry) against centrifuge and socket.io-client, each built the same way (Vite, minified ESM, gzip).
// usage: pnpm bench:size
import { gzipSync } from 'node:zlib';
import { bundle } from '../support/bundle';

const entries: [string, string][] = [
  ['durable-pubsub client-sdk', "export { createClient } from '@durable-pubsub/client-sdk';"],
  [
    '  + tabs (shareAcrossTabs)',
    "export { createClient } from '@durable-pubsub/client-sdk'; export { tabRelay } from '@durable-pubsub/client-sdk/tabs';",
  ],
  ['centrifuge', "export { Centrifuge } from 'centrifuge';"],
  ['socket.io-client', "export { io } from 'socket.io-client';"],
];

const rows: { name: string; min: number; gz: number }[] = [];
for (const [name, source] of entries) {
  const code = await bundle(source);
  rows.push({ name, min: code.length, gz: gzipSync(code, { level: 9 }).length });
}
const sdk = rows[0] as { gz: number };
console.log('\nbundle size (Vite library build, minified ESM; gzip -9)');
console.log(`  ${'package'.padEnd(28)} ${'min'.padStart(10)} ${'min+gzip'.padStart(10)} ${'bytes'.padStart(7)} ${'vs SDK'.padStart(8)}`);
for (const r of rows)
  console.log(
    `  ${r.name.padEnd(28)} ${`${(r.min / 1024).toFixed(1)} KB`.padStart(10)} ${`${(r.gz / 1024).toFixed(2)} KB`.padStart(10)} ${String(r.gz).padStart(7)} ${`${(r.gz / sdk.gz).toFixed(1)}×`.padStart(8)}`,
  );
