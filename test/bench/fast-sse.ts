// A minimal SSE reader for the load generator: a raw HTTP/1.1 GET on node:net, the chunked body and the event stream
// parsed straight off the TCP stream, each event handed over as its name, its `id:`'s number and its data's byte range.
// node:http's response stream emits one 'data' event per chunk, i.e. per message per stream here, which at a million
// deliveries/s would make the load process, not the server, the limit (as `ws` was for the WebSocket: fast-ws.ts).
import { connect, type Socket } from 'node:net';

/** What the load tells apart; every other event (welcome, reset, ping) is OTHER. Comments are not events. */
export const SseEvent = { other: 0, msg: 1, live: 2, gap: 3, close: 4 } as const;
export type SseEventCode = (typeof SseEvent)[keyof typeof SseEvent];

/** Called for each event: its name, its `id:`'s number (NaN without one), its data as `buf[start, end)` (valid only during the call). */
export type OnEvent = (event: SseEventCode, id: number, buf: Buffer, start: number, end: number) => void;

export interface FastSse {
  /** the epoch of the stream's event ids (`<epoch>:<id>`), once one came */
  readonly epoch: string;
  close(): void;
}

const LF = 10;
const CR = 13;
const COLON = 58;
const SPACE = 32;

/** The event name in `buf[start, end)` as a code: compared by length and a byte or two, not decoded. */
function eventCode(buf: Buffer, start: number, end: number): SseEventCode {
  const len = end - start;
  const c = buf[start];
  if (len === 3 && c === 0x6d /* m */ && buf[start + 1] === 0x73 /* s */) return SseEvent.msg;
  if (len === 4 && c === 0x6c /* l */) return SseEvent.live;
  if (len === 3 && c === 0x67 /* g */) return SseEvent.gap;
  if (len === 5 && c === 0x63 /* c */) return SseEvent.close;
  return SseEvent.other;
}

/**
 * The event stream's parser (text/event-stream, as the server writes it: LF line ends, fields `id`, `event`, `data`,
 * `retry`, comments). It is fed the body's bytes in pieces; an event cut by a piece's end waits for the next one.
 */
class EventParser {
  epoch = '';
  private rest: Buffer | null = null;
  private event: SseEventCode = SseEvent.other;
  private id = Number.NaN;
  private dataStart = 0;
  private dataEnd = 0;
  private hasData = false;

  constructor(private readonly onEvent: OnEvent) {}

  feed(piece: Buffer, start: number, end: number): void {
    let buf = piece;
    let at = start;
    let stop = end;
    if (this.rest) {
      buf = Buffer.concat([this.rest, piece.subarray(start, end)]);
      at = 0;
      stop = buf.length;
      this.rest = null;
    }
    let eventStart = at;
    while (at < stop) {
      const nl = buf.indexOf(LF, at);
      if (nl < 0 || nl >= stop) break;
      if (nl === at) {
        // A blank line ends the event (a comment-only block has no data and is no event).
        if (this.hasData) this.onEvent(this.event, this.id, buf, this.dataStart, this.dataEnd);
        this.event = SseEvent.other;
        this.id = Number.NaN;
        this.hasData = false;
        at = nl + 1;
        eventStart = at;
        continue;
      }
      const lineEnd = buf[nl - 1] === CR ? nl - 1 : nl;
      this.field(buf, at, lineEnd);
      at = nl + 1;
    }
    // The event cut here is parsed again, whole, with the next piece (its fields so far are forgotten).
    if (eventStart < stop) {
      this.rest = buf.subarray(eventStart, stop);
      this.event = SseEvent.other;
      this.id = Number.NaN;
      this.hasData = false;
    }
  }

  private field(buf: Buffer, start: number, end: number): void {
    const c = buf[start];
    if (c === COLON) return; // a comment (keep-alive)
    let colon = start;
    while (colon < end && buf[colon] !== COLON) colon++;
    let value = colon + 1;
    if (value < end && buf[value] === SPACE) value++;
    if (value > end) value = end;
    if (c === 0x64 /* data */) {
      // The server writes one data line per event (its data never holds a newline).
      this.dataStart = value;
      this.dataEnd = end;
      this.hasData = true;
    } else if (c === 0x65 /* event */) this.event = eventCode(buf, value, end);
    else if (c === 0x69 /* id */) {
      // `<epoch>:<id>`: the number after the last colon; the epoch is read once.
      let i = end;
      let n = 0;
      let scale = 1;
      while (i > value && (buf[i - 1] as number) >= 48 && (buf[i - 1] as number) <= 57) {
        n += ((buf[i - 1] as number) - 48) * scale;
        scale *= 10;
        i--;
      }
      this.id = i < end ? n : Number.NaN;
      if (!this.epoch && i > value) this.epoch = buf.toString('latin1', value, i - 1);
    }
  }
}

/** Undoes `transfer-encoding: chunked`, handing each run of payload bytes on as it comes. */
class Dechunker {
  private left = 0; // payload bytes still to come in this chunk
  private size = 0;
  private phase: 'size' | 'ext' | 'data' | 'crlf' = 'size';
  ended = false;

  constructor(private readonly onData: (buf: Buffer, start: number, end: number) => void) {}

  feed(buf: Buffer, start: number): void {
    let i = start;
    const n = buf.length;
    while (i < n && !this.ended) {
      if (this.phase === 'data') {
        const take = Math.min(this.left, n - i);
        this.onData(buf, i, i + take);
        i += take;
        this.left -= take;
        if (this.left === 0) this.phase = 'crlf';
        continue;
      }
      const c = buf[i++] as number;
      if (this.phase === 'crlf') {
        if (c === LF) this.phase = 'size';
      } else if (c === LF) {
        if (this.size === 0) this.ended = true;
        else {
          this.left = this.size;
          this.size = 0;
          this.phase = 'data';
        }
      } else if (this.phase === 'size' && c !== CR) {
        if (c === 0x3b /* ; */) this.phase = 'ext';
        else this.size = this.size * 16 + (c <= 57 ? c - 48 : (c | 0x20) - 87);
      }
    }
  }
}

/**
 * Opens `url` (http://host:port/v1/sse?…) with `headers` (e.g. Last-Event-ID); resolves once the server answered 200,
 * rejects with its status and body otherwise.
 */
export function openFastSse(url: string, onEvent: OnEvent, headers: Record<string, string> = {}, onClose?: () => void): Promise<FastSse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: u.hostname, port: Number(u.port), noDelay: true });
    const parser = new EventParser(onEvent);
    let head: Buffer | null = Buffer.alloc(0);
    let body: (buf: Buffer, start: number) => void = () => {};
    const stream: FastSse = {
      get epoch() {
        return parser.epoch;
      },
      close: () => socket.destroy(),
    };
    socket.on('connect', () => {
      const extra = Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('');
      socket.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nAccept: text/event-stream\r\n${extra}\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      if (!head) return body(chunk, 0);
      head = head.length ? Buffer.concat([head, chunk]) : chunk;
      const endOfHead = head.indexOf('\r\n\r\n');
      if (endOfHead < 0) return;
      const text = head.toString('latin1', 0, endOfHead);
      const rest = head;
      head = null;
      const status = Number(text.slice(9, 12));
      if (status !== 200) {
        socket.destroy();
        return reject(new Error(`GET ${u.pathname} answered ${status}: ${rest.toString('utf8', endOfHead + 4)}`));
      }
      if (/\r\ntransfer-encoding:\s*chunked/i.test(text)) {
        const dechunker = new Dechunker((b, s, e) => parser.feed(b, s, e));
        body = (b, s) => dechunker.feed(b, s);
      } else body = (b, s) => parser.feed(b, s, b.length);
      resolve(stream);
      body(rest, endOfHead + 4);
    });
    socket.on('error', reject);
    socket.on('close', () => {
      reject(new Error(`GET ${u.pathname}: the connection closed before an answer`));
      onClose?.();
    });
  });
}
