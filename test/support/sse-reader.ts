// A bare text/event-stream reader over fetch, parsing the stream as the HTML spec's EventSource does (fields, comments, ids).
import { until } from './env';

export interface SseEvent {
  /** the `event:` field (`message` when absent) */
  event: string;
  /** the `id:` field of this block; undefined when the block had none */
  id?: string;
  /** the `data:` field, parsed as JSON */
  data: any;
}

export class SseReader {
  readonly events: SseEvent[] = [];
  /** comment lines (after the leading ':'), e.g. ' keep-alive' */
  readonly comments: string[] = [];
  /** every `retry:` value, as sent */
  readonly retries: string[] = [];
  /** the whole stream as received */
  raw = '';
  /** the event id an EventSource would send as Last-Event-ID now (the last `id:` seen, kept across events) */
  lastEventId = '';
  ended = false;
  private stopped = false;
  /** while set, nothing is read from the socket (a slow reader: the server's writes back up) */
  private gate: { promise: Promise<void>; open(): void } | null = null;
  private readonly abort = new AbortController();
  private pending = '';
  private block: { event?: string; id?: string; data: string[] } = { data: [] };

  private constructor(
    readonly status: number,
    readonly headers: Headers,
    /** the JSON answer of a refusal (a status other than 200) */
    readonly refusal: any,
  ) {}

  /** Opens `url`; with a 200 the stream is read in the background, otherwise the JSON refusal is read and kept. */
  static async open(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
    const abort = new AbortController();
    const res = await fetch(url, { headers, signal: abort.signal });
    if (res.status !== 200) {
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {}
      const r = new SseReader(res.status, res.headers, body);
      r.ended = true;
      return r;
    }
    const r = new SseReader(res.status, res.headers, undefined);
    r.abort.signal.addEventListener('abort', () => abort.abort());
    void r.pump(res.body as ReadableStream<Uint8Array>);
    return r;
  }

  private async pump(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    const reader = body.getReader();
    try {
      for (;;) {
        if (this.gate) await this.gate.promise;
        const { done, value } = await reader.read();
        if (done) break;
        this.feed(decoder.decode(value, { stream: true }));
      }
    } catch {
      // aborted by close(), or the connection dropped
    } finally {
      this.ended = true;
    }
  }

  private feed(text: string): void {
    // Nothing counts after close(): what was read by then is what the client processed.
    if (this.stopped) return;
    this.raw += text;
    this.pending += text;
    const lines = this.pending.split(/\r\n|\r|\n/);
    this.pending = lines.pop() as string;
    for (const line of lines) this.line(line);
  }

  private line(line: string): void {
    if (line === '') {
      const b = this.block;
      this.block = { data: [] };
      if (b.id !== undefined) this.lastEventId = b.id;
      if (b.data.length === 0) return;
      this.events.push({ event: b.event ?? 'message', id: b.id, data: JSON.parse(b.data.join('\n')) });
      return;
    }
    if (line.startsWith(':')) return void this.comments.push(line.slice(1));
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.block.event = value;
    else if (field === 'data') this.block.data.push(value);
    else if (field === 'id') this.block.id = value;
    else if (field === 'retry') this.retries.push(value);
  }

  /** Ids of the `msg` events so far, in order. */
  msgIds(): number[] {
    return this.events.filter((e) => e.event === 'msg').map((e) => e.data.id as number);
  }

  /** The events' names and ids, e.g. ['welcome', 'msg 3', 'live 3'] (`gap` events show their range). */
  summary(): string[] {
    return this.events.map((e) =>
      e.event === 'msg' || e.event === 'live'
        ? `${e.event} ${e.data.id}`
        : e.event === 'gap'
          ? `gap ${e.data.ch} ${e.data.after}-${e.data.upTo}`
          : e.event,
    );
  }

  /** The first event matching `pred` (waits for it; fails if the stream ends first). */
  async waitFor(pred: (e: SseEvent) => boolean, ms = 10_000, what = 'an event'): Promise<SseEvent> {
    let found: SseEvent | undefined;
    await until(() => (found = this.events.find(pred)) !== undefined || this.ended, ms, what);
    if (!found) throw new Error(`stream ended (status ${this.status}) before ${what}`);
    return found;
  }

  next(event: string, ms = 10_000): Promise<SseEvent> {
    return this.waitFor((e) => e.event === event, ms, `a ${event} event`);
  }

  /** Waits until a `msg` event with an id >= `id` arrived. */
  async upTo(id: number, ms = 10_000): Promise<void> {
    await this.waitFor((e) => e.event === 'msg' && e.data.id >= id, ms, `msg ${id}`);
  }

  /** Stops reading from the socket until resume(). */
  pause(): void {
    let open = () => {};
    const promise = new Promise<void>((r) => {
      open = r;
    });
    this.gate ??= { promise, open };
  }

  resume(): void {
    this.gate?.open();
    this.gate = null;
  }

  /** Closes the stream; what was parsed so far stays, nothing more is added. */
  close(): void {
    this.stopped = true;
    this.resume();
    this.abort.abort();
  }
}

/** A text/event-stream cut into its blocks (the lines between blank lines), each line as sent; an unfinished block is left out. */
export function sseBlocks(raw: string): string[][] {
  const blocks = raw.split('\n\n');
  blocks.pop();
  return blocks.map((b) => b.split('\n'));
}
