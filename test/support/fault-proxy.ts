// A TCP fault-injection proxy for tests (a tiny Toxiproxy): forwards to a target and can go silent, partition, reset or delay.
import net, { type Socket } from 'node:net';

export interface FaultProxy {
  readonly port: number;
  /** open client↔upstream pairs; a pair counts until both of its sockets are destroyed */
  readonly connections: number;
  /** bytes the proxy holds in memory: queued chunks plus its sockets' unflushed write buffers */
  readonly buffered: number;
  /** e.g. `redis://127.0.0.1:<port>` */
  url(scheme?: string): string;
  /** forward normally; also resumes after every other mode, delivering held bytes (and held FIN/RST) in order */
  pass(): void;
  /** forward with every chunk, FIN and RST delayed by `ms` in each direction (a round trip costs 2 × ms) */
  latency(ms: number): void;
  /**
   * A gray failure: connections stay open and nothing flows either way, not even FIN/RST; bytes are held, or dropped with
   * discard. With `where`, only the open connections whose upstream socket has that local port (as Redis's CLIENT LIST
   * shows it: `addr=127.0.0.1:<port>`) go silent; the others, and new ones, keep their mode.
   */
  silent(opts?: { discard?: boolean; where?: (upstreamPort: number) => boolean }): void;
  /** the local ports of the open upstream sockets (what the target sees as each client's address) */
  upstreamPorts(): number[];
  /** existing connections act as silent({ discard: true }); new ones are accepted and hang, unconnected upstream until it ends */
  partition(): void;
  /** an action, not a mode: RSTs both sides of every open connection; new connections keep getting the current mode */
  reset(): void;
  /** while on, new connections are accepted and immediately reset (the client sees ECONNRESET) */
  blockNew(on: boolean): void;
  /** stops listening and destroys every socket; safe to call twice */
  close(): Promise<void>;
}

/** One chunk or end-of-stream event waiting to be delivered; `due` is a performance.now() time. */
type Item = { data: Buffer; due: number } | { eof: 'fin' | 'rst'; due: number };

type Mode = 'pass' | 'silent' | 'partition';

/** One direction of a pair. `dst` is null while a partitioned connection has no upstream yet. */
interface Pipe {
  pair: Pair;
  src: Socket;
  dst: Socket | null;
  queue: Item[];
  timer: NodeJS.Timeout | undefined;
  /** dst.write() returned false: src stays paused until dst drains */
  stalled: boolean;
}

interface Pair {
  /** this connection's mode (set for all by the mode switches, or for some by silent({ where })) */
  mode: Mode;
  discard: boolean;
  delay: number;
  client: Socket;
  upstream: Socket | null;
  up: Pipe;
  down: Pipe | null;
}

const noop = () => {};
const isData = (i: Item): i is { data: Buffer; due: number } => 'data' in i;

/** RST where possible; a socket still connecting has nothing to reset (resetAndDestroy would wait for the connect). */
function rst(s: Socket | null): void {
  if (!s || s.destroyed) return;
  if (s.connecting) s.destroy();
  else s.resetAndDestroy();
}

/**
 * Listens on 127.0.0.1 (opts.port or a free one) and forwards each connection to `target`; modes apply to open and new
 * connections alike. Limits worth knowing: bytes handed to the kernel before a mode switch are already on the wire and still
 * arrive; silent() holds in memory without bound; TCP keepalive cannot see through it (each side's kernel answers for itself).
 */
export async function startFaultProxy(target: { host?: string; port: number }, opts: { port?: number } = {}): Promise<FaultProxy> {
  const host = target.host ?? '127.0.0.1';
  let mode: Mode = 'pass';
  let discard = false;
  let delay = 0;
  let refuse = false;
  let closing: Promise<void> | undefined;
  const pairs = new Set<Pair>();

  function pump(p: Pipe): void {
    clearTimeout(p.timer);
    p.timer = undefined;
    while (p.pair.mode === 'pass' && p.dst && !p.stalled) {
      const item = p.queue[0];
      if (!item) return;
      const wait = item.due - performance.now();
      if (wait > 0) {
        p.timer = setTimeout(() => pump(p), Math.ceil(wait));
        return;
      }
      p.queue.shift();
      const dst = p.dst;
      // A dst that is gone (or already got its FIN) drops what still comes its way, as the kernel would.
      if ('eof' in item) {
        if (item.eof === 'rst') rst(dst);
        else if (dst.writable) dst.end();
      } else if (dst.writable && !dst.write(item.data)) {
        p.stalled = true;
        p.src.pause();
        dst.once('drain', () => {
          p.stalled = false;
          p.src.resume();
          pump(p);
        });
      }
    }
  }

  function push(p: Pipe, item: Item): void {
    // Only a queue that was empty needs a kick: otherwise a timer, a drain or a mode switch is already due to pump it.
    if (p.queue.push(item) === 1) pump(p);
  }

  /** Reads from p.src into p's queue and turns its end into a FIN or RST item, so even the end of a stream keeps its place in line. */
  function wire(pair: Pair, p: Pipe): void {
    let ended = false;
    p.src.on('error', noop); // ECONNRESET, EPIPE …: the 'close' that follows is what matters
    p.src.on('data', (data: Buffer) => {
      // Discarding only drops bytes that could have reached a peer; a partitioned newcomer (no dst yet) keeps them, as its kernel would.
      if (!(pair.discard && p.dst)) push(p, { data, due: performance.now() + pair.delay });
    });
    p.src.on('end', () => {
      ended = true;
      push(p, { eof: 'fin', due: performance.now() + pair.delay });
    });
    p.src.on('close', (hadError) => {
      if (hadError || !ended) push(p, { eof: 'rst', due: performance.now() + pair.delay });
      if (pair.client.destroyed && (!pair.upstream || pair.upstream.destroyed)) {
        pairs.delete(pair);
        clearTimeout(pair.up.timer);
        clearTimeout(pair.down?.timer);
      }
    });
  }

  function connectUpstream(pair: Pair): void {
    // allowHalfOpen: a FIN from one side is forwarded as an item, never answered by Node on its own.
    const upstream = net.connect({ host, port: target.port, allowHalfOpen: true, noDelay: true });
    pair.upstream = upstream;
    pair.up.dst = upstream;
    pair.down = { pair, src: upstream, dst: pair.client, queue: [], timer: undefined, stalled: false };
    wire(pair, pair.down);
    pump(pair.up);
  }

  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    client.on('error', noop);
    if (refuse || closing) {
      client.resetAndDestroy();
      return;
    }
    const pair = { mode, discard, delay, client, upstream: null, down: null } as unknown as Pair;
    pair.up = { pair, src: client, dst: null, queue: [], timer: undefined, stalled: false };
    pairs.add(pair);
    wire(pair, pair.up);
    if (mode !== 'partition') connectUpstream(pair);
  });

  function setMode(next: Mode, nextDiscard: boolean, nextDelay: number, where?: (upstreamPort: number) => boolean): void {
    if (!where) {
      mode = next;
      discard = nextDiscard;
      delay = nextDelay;
    }
    for (const pair of pairs) {
      if (where && !(pair.upstream?.localPort !== undefined && where(pair.upstream.localPort))) continue;
      pair.mode = next;
      pair.discard = nextDiscard;
      pair.delay = nextDelay;
      if (!pair.upstream && pair.mode !== 'partition' && !pair.client.destroyed) connectUpstream(pair);
      for (const p of [pair.up, pair.down]) {
        if (!p) continue;
        // FIN/RST items survive a discard: dropping them would leave sockets open forever, which models nothing useful.
        if (pair.discard && p.dst) p.queue = p.queue.filter((i) => !isData(i));
        pump(p); // delivers in pass mode; otherwise just stops a latency timer
      }
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      server.on('error', noop); // e.g. EMFILE on accept: never crash a test run from here
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    get connections() {
      return pairs.size;
    },
    get buffered() {
      let n = 0;
      for (const pair of pairs) {
        for (const p of [pair.up, pair.down]) for (const i of p?.queue ?? []) if (isData(i)) n += i.data.length;
        n += pair.client.writableLength + (pair.upstream?.writableLength ?? 0);
      }
      return n;
    },
    url: (scheme = 'redis') => `${scheme}://127.0.0.1:${port}`,
    pass: () => setMode('pass', false, 0),
    latency: (ms) => setMode('pass', false, ms),
    silent: ({ discard = false, where } = {}) => setMode('silent', discard, 0, where),
    upstreamPorts: () => [...pairs].flatMap((pair) => (pair.upstream?.localPort === undefined ? [] : [pair.upstream.localPort])),
    partition: () => setMode('partition', true, 0),
    reset() {
      for (const pair of pairs) {
        pair.up.queue = [];
        if (pair.down) pair.down.queue = [];
        rst(pair.client);
        rst(pair.upstream);
      }
    },
    blockNew(on) {
      refuse = on;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const pair of pairs) {
          pair.client.destroy();
          pair.upstream?.destroy();
          clearTimeout(pair.up.timer);
          clearTimeout(pair.down?.timer);
        }
      });
      return closing;
    },
  };
}
