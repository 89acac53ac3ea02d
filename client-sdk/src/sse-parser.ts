// Reads a text/event-stream (the WHATWG "event stream interpretation") from text chunks cut anywhere: events out, comments dropped.

/** One dispatched event: its type (`message` when the stream named none), its data lines joined by `\n`, its `id` field if it had one. */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * A parser: feed it the decoded text as it arrives, in chunks of any size (a line, a line ending, even the `\r` and
 * `\n` of one `\r\n`, may be split across two). Lines end with `\r\n`, `\n` or `\r`; `:` lines are comments; `data`
 * lines accumulate; a blank line dispatches the event (none without data, as EventSource). `retry` and unknown fields
 * are ignored: the caller decides when to reconnect.
 */
export function sseParser(onEvent: (e: SseEvent) => void): (chunk: string) => void {
  let rest = '';
  let first = true;
  /** the last chunk ended with `\r` */
  let cr = false;
  let event = '';
  let data: string[] = [];
  let id: string | undefined;
  const line = (l: string) => {
    if (!l) {
      if (data.length)
        onEvent(
          id === undefined
            ? { event: event || 'message', data: data.join('\n') }
            : { event: event || 'message', data: data.join('\n'), id },
        );
      event = '';
      data = [];
      id = undefined;
      return;
    }
    const colon = l.indexOf(':');
    if (colon === 0) return;
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? '' : l.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
    else if (field === 'id' && !value.includes('\0')) id = value;
  };
  return (chunk) => {
    if (!chunk) return;
    if (first) {
      first = false;
      if (chunk[0] === '\uFEFF') chunk = chunk.slice(1);
    }
    // A `\r` ends its line at once; when it was the first half of a `\r\n` cut by the chunks, the `\n` is dropped.
    const text = rest + (cr && chunk[0] === '\n' ? chunk.slice(1) : chunk);
    cr = chunk.endsWith('\r');
    const lines = text.split(/\r\n|\r|\n/);
    rest = lines.pop() as string;
    for (const l of lines) line(l);
  };
}
