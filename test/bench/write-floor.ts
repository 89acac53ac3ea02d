// The floor under a broadcast on this machine, for development (not part of pnpm bench): what one small write to
// each of N TCP sockets costs the kernel and Node, with no WebSocket, JSON or store: a bare `net` server writes one
// 120-byte buffer to every socket of N (server processes × N/servers each), bare `net` clients read them. Prints the
// CPU per delivery of the servers and of the clients, and what a broadcast to 100,000 needs of 2 cores at that rate.
// usage: tsx test/bench/write-floor.ts [connections=15000] [servers=1]
import { fork } from 'node:child_process';
import net from 'node:net';
import { cpus } from 'node:os';
import { cpuSeconds } from './procs';

const N = Number(process.argv[2] ?? 15_000);
const SERVERS = Number(process.argv[3] ?? 1);
const ROUNDS = 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (process.env.FLOOR_ROLE === 'server') {
  // One server: accepts, then writes the same frame to every socket each time it is told to.
  const sockets: net.Socket[] = [];
  const frame = Buffer.alloc(120, 97);
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => {});
    sockets.push(s);
  });
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as net.AddressInfo).port }));
  process.on('message', () => {
    for (const s of sockets) s.write(frame);
  });
} else if (process.env.FLOOR_ROLE === 'client') {
  // One client process per server: N/servers sockets, counts what arrives.
  const { port, count, from } = JSON.parse(process.env.FLOOR_SPEC as string) as { port: number; count: number; from: string };
  let got = 0;
  const all: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: from });
    s.on('data', () => {
      got++;
    });
    s.on('error', () => {});
    all.push(new Promise((r) => s.once('connect', () => r())));
    if (all.length === 500) await Promise.all(all.splice(0));
  }
  await Promise.all(all);
  process.send?.({ ready: true });
  process.on('message', async (want: number) => {
    while (got < want) await sleep(1);
    process.send?.({ got });
  });
} else {
  const per = Math.floor(N / SERVERS);
  const servers = Array.from({ length: SERVERS }, () => fork(import.meta.filename, [], { env: { ...process.env, FLOOR_ROLE: 'server' } }));
  const ports = await Promise.all(servers.map((s) => new Promise<number>((r) => s.once('message', (m: { port: number }) => r(m.port)))));
  const clients = ports.map((port, k) =>
    fork(import.meta.filename, [], {
      env: { ...process.env, FLOOR_ROLE: 'client', FLOOR_SPEC: JSON.stringify({ port, count: per, from: `127.0.0.${2 + k}` }) },
    }),
  );
  await Promise.all(clients.map((c) => new Promise((r) => c.once('message', r))));
  await sleep(1000);
  const pids = (ps: { pid?: number }[]) => ps.map((p) => p.pid as number);
  const rows: { ms: number; server: number; client: number }[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const s0 = cpuSeconds(pids(servers));
    const c0 = cpuSeconds(pids(clients));
    const t0 = performance.now();
    const arrived = Promise.all(clients.map((c) => new Promise((r) => c.once('message', r))));
    for (const c of clients) c.send(round * per);
    for (const s of servers) s.send('go');
    await arrived;
    const ms = performance.now() - t0;
    await sleep(200);
    rows.push({
      ms,
      server: (1e6 * (cpuSeconds(pids(servers)) - s0)) / (per * SERVERS),
      client: (1e6 * (cpuSeconds(pids(clients)) - c0)) / (per * SERVERS),
    });
    await sleep(500);
  }
  const med = (f: (r: (typeof rows)[number]) => number) => rows.map(f).sort((a, b) => a - b)[Math.floor(ROUNDS / 2)] as number;
  const server = med((r) => r.server);
  const client = med((r) => r.client);
  console.log(
    `write floor: ${per * SERVERS} sockets, ${SERVERS} server and ${SERVERS} client process(es), ${cpus().length} cores, medians of ${ROUNDS}`,
  );
  console.log('  metric                                         value');
  console.log(
    `  all delivered (ms)                        ${med((r) => r.ms)
      .toFixed(0)
      .padStart(10)}`,
  );
  console.log(`  server CPU per delivery (µs)              ${server.toFixed(1).padStart(10)}`);
  console.log(`  client CPU per delivery (µs)              ${client.toFixed(1).padStart(10)}`);
  console.log(
    `  100,000 deliveries on ${cpus().length} cores at best (ms)    ${((1e5 * (server + client)) / 1000 / cpus().length).toFixed(0).padStart(10)}`,
  );
  for (const p of [...servers, ...clients]) p.kill('SIGKILL');
}
