// GET /v1/sse: one reader's stream as text/event-stream, served by the same hand-over as a WebSocket and paced the same way.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { CloseCode, type HelloFrame, MSG_FRAME_PREFIX } from '@durable-pubsub/client-sdk/protocol';
import { frameId } from './bridge';
import { Connection, type ConnectionDeps } from './connection';
import type { BurstCorker } from './cork';
import { type Outlet, streamOptions } from './handover';
import { drained } from './pacing';
import { eachPayload } from './wire';

const MSG_PREFIX = Buffer.from(MSG_FRAME_PREFIX);
const GAP_PREFIX = Buffer.from('{"op":"gap"');
const END = Buffer.from('\n\n');
const GAP_EVENT = Buffer.from('event: gap\ndata: ');
/** what the browser waits before it reconnects on its own (its default is about 3 s) */
const RETRY_MS = 1000;

/** A frame's JSON on one line: a stored frame written around the server may hold newlines as JSON whitespace. */
function oneLine(payload: Buffer): Buffer {
  if (payload.indexOf(10) < 0 && payload.indexOf(13) < 0) return payload;
  const copy = Buffer.from(payload);
  for (let i = 0; i < copy.length; i++) if (copy[i] === 10 || copy[i] === 13) copy[i] = 32;
  return copy;
}

const startsWith = (p: Buffer, prefix: Buffer) => p.length >= prefix.length && p.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;

/** A gap frame the hand-over wrote itself (encodeGap's layout, always), as opposed to a stored message. */
export function isGapPayload(p: Buffer): boolean {
  return startsWith(p, GAP_PREFIX);
}

/**
 * The id of a stored msg frame: read from the publish scripts' layout, or parsed from a frame stored around the server
 * in another valid layout (replay checks every frame of an HTTP reader, so it is one valid msg frame).
 */
export function msgIdOf(p: Buffer): number {
  return startsWith(p, MSG_PREFIX) ? frameId(p) : Number(JSON.parse(p.toString('utf8')).id);
}

/** The SSE events of WebSocket frames built here: `msg` events with `id: <epoch>:<id>`, and held `gap` frames. */
export function sseEvents(bytes: Buffer, epoch: string): Buffer {
  const parts: Buffer[] = [];
  eachPayload(bytes, (p) => {
    parts.push(isGapPayload(p) ? GAP_EVENT : Buffer.from(`id: ${epoch}:${msgIdOf(p)}\nevent: msg\ndata: `));
    parts.push(oneLine(p), END);
  });
  return Buffer.concat(parts);
}

const CRLF = Buffer.from('\r\n');

/** `body` as one chunk of a chunked HTTP/1.1 body, its framing included: written straight to the socket. */
export function httpChunk(body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, CRLF]);
}

/**
 * The body chunk of frames' SSE events, built once for every stream that sends the same bytes: a live message to all
 * its readers (the bridge frames it once), a shared replay read to the readers resuming from one point. Bytes at the
 * same place in the same memory are the same frames (as in MsgsCache). One per server.
 */
export class SseCache {
  private readonly built = new WeakMap<ArrayBufferLike, Map<string, Buffer>>();
  /** by the frame object first: a live message is one buffer for all its streams (no key to build per delivery) */
  private readonly byFrame = new WeakMap<Buffer, { epoch: string; chunk: Buffer }>();

  chunk(wire: Buffer, epoch: string): Buffer {
    const same = this.byFrame.get(wire);
    if (same?.epoch === epoch) return same.chunk;
    let built = this.built.get(wire.buffer);
    if (!built) this.built.set(wire.buffer, (built = new Map()));
    const key = `${wire.byteOffset} ${wire.length} ${epoch}`;
    let chunk = built.get(key);
    if (!chunk) built.set(key, (chunk = httpChunk(sseEvents(wire, epoch))));
    this.byFrame.set(wire, { epoch, chunk });
    return chunk;
  }
}

export interface SseDeps extends ConnectionDeps {
  corker: BurstCorker;
  sse: SseCache;
}

/**
 * The hand-over's writes as SSE events on an HTTP response. Once the headers are out, body chunks, framed once for
 * every stream, go straight to the socket as a WebSocket's frames do (through the response, each write of each message
 * cost four socket writes and most of the server's time in fan-out).
 */
class SseOutlet implements Outlet {
  /** chunks go to the socket itself: the response holds nothing back (no pipelined response before it) */
  direct = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly stream: SseStream,
    private readonly deps: SseDeps,
  ) {}

  private get socket(): Socket | null {
    return this.res.socket;
  }

  get open(): boolean {
    return !this.res.writableEnded && !this.res.destroyed && this.socket?.writable !== false;
  }

  /** Starts the body with `head`; from then on writes go to the socket when nothing waits in the response. */
  begin(head: string): void {
    this.res.write(head);
    const socket = this.socket;
    this.direct = socket !== null && this.res.writableLength === socket.writableLength;
  }

  /** Text of the stream's own (events, comments) after the frames written before it. */
  text(text: string): void {
    if (!this.open) return;
    if (this.direct) this.socket?.write(httpChunk(Buffer.from(text)));
    else this.res.write(text);
  }

  get buffered(): number {
    return this.res.writableLength;
  }

  /** The hand-over's own frames: `live` (with the position it vouches for as the event id) and `gap`. */
  sendText(text: string): void {
    if (!this.open) return;
    const f = JSON.parse(text) as { op: string; id?: number };
    this.text(`${f.op === 'live' ? `id: ${this.stream.epoch}:${f.id}\n` : ''}event: ${f.op}\ndata: ${text}\n\n`);
  }

  writeFrames(bytes: Buffer): void {
    if (!this.open) return;
    if (this.direct) this.socket?.write(this.deps.sse.chunk(bytes, this.stream.epoch));
    else this.res.write(sseEvents(bytes, this.stream.epoch));
  }

  burst(): void {
    this.deps.corker.cork(this.socket ?? undefined);
  }

  cork(): void {
    this.socket?.cork();
  }

  uncork(): void {
    this.socket?.uncork();
  }

  writable(highWater = this.deps.config.sendHighWater): Promise<void> {
    const { res } = this;
    const { config, stats } = this.deps;
    if (!this.open || res.writableLength <= highWater) return Promise.resolve();
    return drained(
      { buffered: () => res.writableLength, socket: res.socket, closes: res },
      {
        highWater,
        timeoutMs: config.slowConsumerTimeoutMs,
        stopped: () => !this.open,
        onStalled: () => {
          stats.slowClosed++;
          this.stream.close(CloseCode.slowConsumer, 'slow consumer: no progress');
          // The close event waits behind data the reader does not take: free the socket now.
          setTimeout(() => res.destroy(), 1000).unref();
        },
      },
    );
  }
}

export class SseStream extends Connection {
  // On the prototype, not a field of every connection.
  get kind(): string {
    return 'sse';
  }
  private readonly out: SseOutlet;

  constructor(
    private readonly res: ServerResponse,
    deps: SseDeps,
    /** the client asked for a `ping` event with each keep-alive (it cannot see comments) */
    private readonly ping: boolean,
  ) {
    super(deps);
    this.out = new SseOutlet(res, this, deps);
    res.on('close', () => {
      if (!this.closeCode) this.closeCode = 1006;
      this.onClosed();
    });
  }

  /**
   * Admits and registers the reader, then answers 200 and streams. Before the answer it throws (a Refusal, or the
   * store's error), for the route to answer with its status.
   */
  async serve(hello: HelloFrame): Promise<boolean> {
    const r = await this.open(hello, this.out, streamOptions(false, true));
    if (!r || this.closed) return false;
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    });
    let head = `retry: ${RETRY_MS}\n\nevent: welcome\ndata: {"op":"welcome","v":1,"conn":"${this.conn}","recipient":${JSON.stringify(hello.recipient)},"epoch":${JSON.stringify(r.epoch)},"resumeFrom":${r.resumeFrom},"head":${r.head}${r.epochChanged ? ',"epochChanged":true' : ''}}\n\n`;
    if (r.epochChanged)
      head += `event: reset\ndata: {"oldEpoch":${JSON.stringify(hello.epoch)},"newEpoch":${JSON.stringify(r.epoch)},"lastAckedId":${hello.lastAckedId ?? 0}}\n\n`;
    this.out.begin(head);
    this.begin(r);
    return true;
  }

  override keepAlive(): void {
    if (this.state !== 'live' && this.state !== 'catching-up') return;
    this.out.text(this.ping ? ': keep-alive\n\nevent: ping\ndata: {}\n\n' : ': keep-alive\n\n');
  }

  /** Ends the stream; a `close` event first says why (a WebSocket close code), once the client was answered. */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closeCode = code;
    const { res } = this;
    if (res.headersSent) {
      this.out.text(`event: close\ndata: ${JSON.stringify({ code, reason })}\n\n`);
      if (!res.writableEnded) res.end();
    } else if (!res.writableEnded) {
      const status = code === CloseCode.unauthorized ? 401 : 503;
      const body = JSON.stringify({ error: { code: status === 401 ? 'unauthorized' : 'unavailable', message: reason } });
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(body);
    }
    this.onClosed();
  }

  fail(err: unknown): void {
    if (this.closed) return;
    const e = this.dpsError(err);
    this.close(CloseCode.goingAway, `${e.code}: ${e.message}`);
  }
}
