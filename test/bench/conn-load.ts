// One load process of `pnpm bench --only connections`: holds up to ~16k connections from its own source address
// (127.0.0.<k>), driven by the harness over IPC: open (the connect storm), broadcast (arrival time of the next
// message on every socket), drop, resume (the reconnect storm), exit. Answers each command with one message.
// usage: tsx conn-load.ts '<json ConnLoadSpec>' (forked with an IPC channel)
import { frameId } from '@durable-pubsub/server/src/bridge';
import { io, type Socket } from 'socket.io-client';
import { LIVE, MSG, now, type System, sentAt } from './clients';
import { type FastWs, openFastWs, startsWith } from './fast-ws';

export interface ConnLoadSpec {
  system: System;
  base: string;
  /** the first connection's index (recipients are `conn-<index>`) */
  from: number;
  count: number;
  /** source addresses of this process's connections: the first open, and their resume (the ports of the first
   * are in TIME_WAIT after the drop) */
  localAddress: string;
  resumeAddress: string;
  /** connects in flight at once */
  parallel: number;
}

export type ConnCommand = { cmd: 'open' } | { cmd: 'arm' } | { cmd: 'drop' } | { cmd: 'resume'; missed: number } | { cmd: 'exit' };

export type ConnReply =
  | { cmd: 'ready' }
  | { cmd: 'opened'; held: number; failed: number; closed: number; codes: Record<string, number>; first: number; last: number }
  | { cmd: 'armed' }
  | { cmd: 'arrived'; lat: number[]; missing: number }
  | { cmd: 'dropped'; at: number }
  | {
      cmd: 'resumed';
      first: number;
      last: number;
      live: number;
      got: number;
      bad: number;
      failed: number;
      closed: number;
      codes: Record<string, number>;
    };

const spec = JSON.parse(process.argv[2] as string) as ConnLoadSpec;
const { system, count } = spec;
const PATTERN = system === 'S' ? 'conn' : 'conn.*';
const WELCOME = Buffer.from('{"op":"welcome"');
const SUBBED = Buffer.from('{"subbed"');
const EPOCH = Buffer.from('"epoch":"');
const reply = (m: ConnReply) => process.send?.(m);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Per connection: its socket, its last id (P), whether it is live, what a broadcast or a resume counted. */
const sockets: (FastWs | Socket | undefined)[] = new Array(count);
const lastId = new Float64Array(count);
const live = new Uint8Array(count);
/** broadcast: ms from publish to arrival, NaN until it came */
const arrival = new Float64Array(count).fill(Number.NaN);
let armed = false;
let arrived = 0;
/** resume: missed messages received, and those at or below the last id before (duplicates, or out of order) */
const got = new Int32Array(count);
let bad = 0;
/** sockets the server closed (not this process): a refused or failed hello, a stalled reader */
let closedByServer = 0;
/** those closes per close code (the server's close frame; 1006: the socket ended without one, e.g. terminated) */
const closeCodes: Record<string, number> = {};
let resuming = false;
let epoch = '';
let onArrived = () => {};
let onLive = () => {};

function onMessage(i: number, t: number): void {
  if (armed && Number.isNaN(arrival[i] as number)) {
    arrival[i] = now() - t;
    if (++arrived === count) onArrived();
  }
  if (resuming) got[i] = (got[i] as number) + 1;
}

function goLive(i: number): void {
  if (live[i]) return;
  live[i] = 1;
  onLive();
}

/** P and B: the fast client; P says hello (resuming from its last id after a drop), B subscribes. */
function openWs(i: number, resume: boolean, ownPort = true): Promise<void> {
  const view: { buf: Buffer; start: number; end: number } = { buf: Buffer.alloc(0), start: 0, end: 0 };
  let me: FastWs | undefined;
  const url = system === 'P' ? `${spec.base.replace('http', 'ws')}/ws` : spec.base.replace('http', 'ws');
  return openFastWs(
    url,
    (buf, start, end) => {
      if (system === 'B') {
        if (startsWith(buf, start, end, SUBBED)) goLive(i);
        else {
          view.buf = buf;
          view.start = start;
          view.end = end;
          onMessage(i, sentAt(view));
        }
        return;
      }
      if (startsWith(buf, start, end, MSG)) {
        const id = frameId(buf, start, end);
        if (resuming && id <= (lastId[i] as number)) bad++;
        lastId[i] = id;
        view.buf = buf;
        view.start = start;
        view.end = end;
        onMessage(i, armed ? sentAt(view) : 0);
      } else if (startsWith(buf, start, end, LIVE)) goLive(i);
      else if (!epoch && startsWith(buf, start, end, WELCOME)) {
        const at = buf.indexOf(EPOCH, start);
        if (at >= 0 && at < end) epoch = buf.toString('latin1', at + EPOCH.length, buf.indexOf(0x22, at + EPOCH.length));
      }
    },
    (code) => {
      // A dropped socket's close may come after its successor is open.
      if (sockets[i] !== me) return;
      live[i] = 0;
      closedByServer++;
      closeCodes[code] = (closeCodes[code] ?? 0) + 1;
    },
    resume ? spec.resumeAddress : spec.localAddress,
    ownPort ? FIRST_PORT + i : undefined,
  ).then((ws) => {
    me = ws;
    sockets[i] = ws;
    const recipient = `conn-${spec.from + i}`;
    if (system === 'B') ws.send(`{"sub":"${PATTERN}"}`);
    else if (resume) ws.send(JSON.stringify({ op: 'hello', v: 1, recipient, subs: [PATTERN], epoch, lastAckedId: lastId[i] }));
    else ws.send(JSON.stringify({ op: 'hello', v: 1, recipient, subs: [PATTERN], from: 'head' }));
  });
}

/** Connection i binds port FIRST_PORT + i of its source address (below the ephemeral range, 32768 and up). */
const FIRST_PORT = 12_000;

/** S: socket.io-client; joined to the room once it acks. Reconnects on its own after a drop (state recovery). */
function openSio(i: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = io(spec.base, {
      transports: ['websocket'],
      forceNew: true,
      reconnectionDelay: S_AWAY_MS,
      reconnectionDelayMax: S_AWAY_MS,
      randomizationFactor: 0,
    } as Parameters<typeof io>[1]);
    sockets[i] = s;
    s.on('m', (data: { t: number }) => onMessage(i, data.t));
    s.on('connect', () => {
      // A recovered session is still in its room; a new one joins.
      if (s.recovered) return goLive(i);
      s.emitWithAck('sub', PATTERN).then(() => {
        goLive(i);
        resolve();
      }, reject);
    });
    s.on('disconnect', () => {
      live[i] = 0;
    });
    s.once('connect_error', reject);
  });
}

/** S reconnects this long after its transport is closed under it (all together). */
const S_AWAY_MS = 2000;

/** Opens connections first..count with `parallel` in flight; resolves once every one is live (or failed). */
async function openAll(resume: boolean): Promise<{ first: number; last: number; failed: number }> {
  let next = 0;
  let failed = 0;
  let last = 0;
  onLive = () => {
    last = now();
  };
  const closedBefore = closedByServer;
  const first = now();
  const worker = async () => {
    while (next < count) {
      const i = next++;
      try {
        // A port of ours that something else holds (EADDRINUSE): the kernel picks one instead.
        await (system === 'S' ? openSio(i) : openWs(i, resume).catch(() => openWs(i, resume, false)));
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: spec.parallel }, worker));
  // Until every connection is live, or failed, or was closed by the server (counted, not waited for).
  const done = () => live.reduce((a, b) => a + b, 0) + failed + closedByServer - closedBefore >= count;
  while (!done() && now() - first < 120_000) await sleep(20);
  return { first, last, failed };
}

process.on('message', async (m: ConnCommand) => {
  if (m.cmd === 'open') {
    const r = await openAll(false);
    reply({ cmd: 'opened', held: live.reduce((a, b) => a + b, 0), ...r, closed: closedByServer, codes: { ...closeCodes } });
  } else if (m.cmd === 'arm') {
    arrival.fill(Number.NaN);
    arrived = 0;
    armed = true;
    const done = new Promise<void>((r) => {
      onArrived = r;
    });
    reply({ cmd: 'armed' });
    await Promise.race([done, sleep(30_000)]);
    armed = false;
    reply({ cmd: 'arrived', lat: Array.from(arrival).filter((x) => !Number.isNaN(x)), missing: count - arrived });
  } else if (m.cmd === 'drop') {
    if (system === 'S') for (const s of sockets as Socket[]) s.io.engine.close();
    else {
      for (const s of sockets as FastWs[]) s.close();
      sockets.fill(undefined);
    }
    live.fill(0);
    reply({ cmd: 'dropped', at: now() });
  } else if (m.cmd === 'resume') {
    got.fill(0);
    bad = 0;
    resuming = true;
    let r: { first: number; last: number; failed: number };
    if (system === 'S') {
      // The sockets come back on their own; wait until every one is connected (recovered) and has what it missed.
      const first = now();
      while (live.some((x) => !x) || got.some((g) => g < m.missed)) {
        if (now() - first > 120_000) break;
        await sleep(20);
      }
      r = { first, last: now(), failed: 0 };
    } else {
      r = await openAll(true);
      // Live means every missed message was sent before it; a few may still be in flight in this process.
      const until = now() + 5000;
      while (system === 'P' && got.some((g, i) => g < m.missed && live[i]) && now() < until) await sleep(10);
      r.last = Math.max(r.last, now());
    }
    resuming = false;
    const live_ = system === 'S' ? (sockets as Socket[]).filter((s) => s.connected && s.recovered).length : live.reduce((a, b) => a + b, 0);
    reply({
      cmd: 'resumed',
      ...r,
      live: live_,
      got: got.reduce((a, b) => a + b, 0),
      bad,
      closed: closedByServer,
      codes: { ...closeCodes },
    });
  } else if (m.cmd === 'exit') process.exit(0);
});
reply({ cmd: 'ready' });
