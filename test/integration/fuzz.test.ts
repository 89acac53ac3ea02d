// Frame fuzzing: 100,000+ random and mutated frames against a server process; it stays up, its memory returns, a bystander misses nothing.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { httpPublish, type ServerProcess, serverProcess, sleep, startTestRedis, type TestRedis, until } from '../support/env';
import { RawClient } from '../support/raw-client';

const FRAMES = Number(process.env.DPS_FUZZ_FRAMES ?? 100_000);
let redis: TestRedis;
let server: ServerProcess;

beforeAll(async () => {
  redis = await startTestRedis();
  server = await serverProcess(redis.url, { DPS_MAX_FRAMES_PER_SEC: '1000000', DPS_MAX_FRAME: '16384', DPS_HELLO_TIMEOUT: '2000' });
});
afterAll(async () => {
  await server?.stop();
  await redis?.cleanup();
});

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;

/** A small seeded generator, so a failure can be replayed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const VALID = [
  '{"op":"hello","v":1,"recipient":"fz","subs":["fz.*"]}',
  '{"op":"ack","id":5}',
  '{"op":"sub","pattern":"a.*","ref":"1"}',
  '{"op":"unsub","pattern":"a.*"}',
  '{"op":"pub","ch":"junk","data":{"a":[1,2,3]},"key":"k"}',
  '{"op":"auth","token":"x.y.z"}',
  '{"op":"ping"}',
];

function frame(r: () => number): { data: string | Buffer; binary: boolean } {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)] as T;
  const kind = Math.floor(r() * 10);
  switch (kind) {
    case 0: // random bytes, as binary or as a text frame with invalid UTF-8
      return { data: Buffer.from(Array.from({ length: 1 + Math.floor(r() * 64) }, () => Math.floor(r() * 256))), binary: r() < 0.5 };
    case 1: {
      const n = 1 + Math.floor(r() * 4000);
      return {
        data: r() < 0.5 ? `${'['.repeat(n)}${']'.repeat(n)}` : `{"op":"ack","id":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`,
        binary: false,
      };
    }
    case 2:
      return {
        data: pick([
          '{"op":"ack","id":1e308}',
          '{"op":"ack","id":-0}',
          '{"op":"ack","id":1.5}',
          '{"op":"ack","id":9007199254740993}',
          '{"op":"ack","id":"7"}',
        ]),
        binary: false,
      };
    case 3:
      return {
        data: pick([
          '{"op":"ack","__proto__":{"id":1}}',
          '{"__proto__":{"op":"ping"}}',
          '{"op":"hello","v":1,"recipient":"p","subs":[],"__proto__":{"token":"t"}}',
          '{"op":"constructor"}',
          '{"op":"__proto__"}',
        ]),
        binary: false,
      };
    case 4:
      return { data: 'x'.repeat(16_384 + Math.floor(r() * 1000)), binary: false }; // past DPS_MAX_FRAME: 1009
    default: {
      // A valid frame, mutated: characters flipped, inserted, deleted, or cut short.
      const chars = [...pick(VALID)];
      for (let m = Math.floor(r() * 4); m > 0; m--) {
        const at = Math.floor(r() * chars.length);
        const op = r();
        if (op < 0.3) chars[at] = String.fromCharCode(Math.floor(r() * 128));
        else if (op < 0.6) chars.splice(at, 0, pick(['"', '{', '}', '[', ']', ',', ':', '\\', '\u0000', '\ud800', '9']));
        else if (op < 0.8) chars.splice(at, 1);
        else chars.length = at;
      }
      return { data: chars.join(''), binary: false };
    }
  }
}

describe('frame fuzzing', () => {
  it(`survives ${FRAMES.toLocaleString('en')} random and mutated frames while a well-behaved client gets everything`, async () => {
    const bystander = await RawClient.connect(server.wsUrl);
    await bystander.hello({ recipient: 'fz-bystander', subs: ['fz.*'] });
    await bystander.next('live');
    await sleep(500);
    const rss0 = rssMb(server.child.pid as number);

    let sent = 0;
    let connections = 0;
    const published: number[] = [];
    let fuzzing = true;
    const publisher = (async () => {
      for (let i = 0; fuzzing; i++) {
        published.push((await httpPublish(server, { ch: `fz.${i % 3}`, data: i })).body.id);
        await sleep(5);
      }
    })();

    const worker = async (seed: number) => {
      const r = rng(seed);
      while (sent < FRAMES) {
        connections++;
        const ws = new WebSocket(server.wsUrl, { perMessageDeflate: false });
        ws.on('error', () => {});
        await new Promise<void>((resolve) => {
          ws.once('open', () => resolve());
          ws.once('close', () => resolve());
        });
        if (r() < 0.5 && ws.readyState === WebSocket.OPEN) ws.send(VALID[0] as string);
        for (let i = 0; i < 100 && ws.readyState === WebSocket.OPEN && sent < FRAMES; i++) {
          const f = frame(r);
          ws.send(f.data, { binary: f.binary });
          sent++;
          if (i % 20 === 19) await sleep(0);
        }
        if (r() < 0.5) ws.terminate();
        else ws.close();
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, i) => worker(1000 + i)));
    fuzzing = false;
    await publisher;

    await until(() => bystander.lastId() === published[published.length - 1], 15_000, 'the bystander to catch up');
    expect(bystander.msgIds()).toEqual(published);
    expect(bystander.closeCode).toBe(null);
    expect(server.child.exitCode).toBe(null);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);

    // Every fuzzer's session is gone: only the bystander's connection is left.
    const gauge = async () =>
      (await (await fetch(`${server.url}/metrics`)).text())
        .split('\n')
        .filter((l) => l.startsWith('dps_connections{'))
        .join(' ');
    const onlyBystander =
      'dps_connections{state="hello"} 0 dps_connections{state="opening"} 0 dps_connections{state="catching-up"} 0 dps_connections{state="live"} 1';
    await until(async () => (await gauge()) === onlyBystander, 5000).catch(() => {});
    expect(await gauge()).toBe(onlyBystander);

    // Memory comes back once the fuzzers are gone (RSS, with room for V8's heap sizing: a busy machine
    // has shown 65 MB of growth where a quiet one shows 31–54 MB; a leak per frame would be far more).
    await sleep(1500);
    const rss1 = rssMb(server.child.pid as number);
    process.stdout.write(
      `fuzz: ${sent} frames over ${connections} connections; server RSS ${rss0.toFixed(0)} -> ${rss1.toFixed(0)} MB; bystander got ${published.length} of ${published.length}\n`,
    );
    expect(sent).toBeGreaterThanOrEqual(FRAMES);
    expect(rss1 - rss0).toBeLessThan(96);
    bystander.close();
  });
});
