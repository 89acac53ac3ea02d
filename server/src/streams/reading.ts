// Reading a Durable Stream: a catch-up answer (about a megabyte), and a live SSE response that sends answers as the
// stream grows, paced by its reader.
import type { ServerResponse } from 'node:http';
import type { Store } from '../store';
import { formatOffset, nextCursor } from './offsets';
import { isJson, isText } from './requests';
import type { Wakeups } from './wakeups';

/** About this many bytes per catch-up answer (more: the client reads on from Stream-Next-Offset). */
const CHUNK = 1 << 20;
/** An SSE response is ended after this long so that CDNs can collapse readers (§10.2); the client reconnects. */
const SSE_MAX_MS = 60_000;

/** One catch-up answer of a stream from `from`: its entries as one body (a JSON array in JSON mode). */
export async function readChunk(store: Store, path: string, from: number | 'now') {
  const r = await store.streams.read(path, from, CHUNK, true);
  if (r.status !== 'ok') return r;
  const json = isJson(r.meta.ct);
  const parts: Buffer[] = [];
  let next = r.from;
  for (const e of r.entries) {
    const data = e.start < r.from ? e.data.subarray(r.from - e.start) : e.data;
    parts.push(data);
    next = e.start + e.data.length;
  }
  const body = json ? Buffer.from(`[${parts.map((p) => p.toString('utf8')).join(',')}]`) : Buffer.concat(parts);
  return { status: 'ok' as const, meta: r.meta, from: r.from, next, body, count: parts.length };
}

export type Chunk = Extract<Awaited<ReturnType<typeof readChunk>>, { status: 'ok' }>;

/** An SSE response from the chunk `first` on, until the stream closes, the reader goes, or SSE_MAX_MS pass. */
export async function streamSse(
  res: ServerResponse,
  path: string,
  first: Chunk,
  clientCursor: string | null,
  ctx: { next(from: number): ReturnType<typeof readChunk>; wakeups: Wakeups; live: Set<AbortController> },
): Promise<void> {
  let c: Awaited<ReturnType<typeof readChunk>> = first;
  const text = isText(c.meta.ct);
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    ...(text ? {} : { 'stream-sse-data-encoding': 'base64' }),
  });
  res.flushHeaders();
  const abort = new AbortController();
  ctx.live.add(abort);
  res.on('close', () => abort.abort());
  const deadline = Date.now() + SSE_MAX_MS;
  let cursor = clientCursor;
  try {
    for (;;) {
      if (c.status !== 'ok') break;
      // Paced by the reader: the next chunk is read once this one has left (memory stays about one chunk).
      if (c.count > 0 && !res.write(dataEvent(c.body, isJson(c.meta.ct), text))) await drained(res);
      const upToDate = c.next === c.meta.tail;
      const closed = c.meta.closed && upToDate;
      const control: Record<string, unknown> = { streamNextOffset: formatOffset(c.next) };
      if (!closed) control.streamCursor = cursor = nextCursor(cursor);
      if (upToDate) control.upToDate = true;
      if (closed) control.streamClosed = true;
      if (c.count > 0 || upToDate) res.write(`event: control\ndata:${JSON.stringify(control)}\n\n`);
      if (closed) break;
      const at = c.next;
      while (!abort.signal.aborted && Date.now() < deadline) {
        if (upToDate) await ctx.wakeups.wait(path, deadline - Date.now(), abort.signal);
        c = await ctx.next(at);
        if (c.status !== 'ok' || c.count > 0 || c.meta.closed || !upToDate) break;
      }
      if (abort.signal.aborted || Date.now() >= deadline) break;
    }
  } finally {
    ctx.live.delete(abort);
    res.end();
  }
}

/** Resolves when `res` has room again, or is closed. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** One `data` event: JSON arrays and text line by line, anything else as base64. */
function dataEvent(body: Buffer, json: boolean, text: boolean): string {
  const payload = text ? body.toString('utf8') : body.toString('base64');
  const lines = json || !text ? [payload] : payload.split(/\r\n|\r|\n/);
  return `event: data\n${lines.map((l) => `data:${l}`).join('\n')}\n\n`;
}
