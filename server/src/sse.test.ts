// WebSocket frames built once (wire.ts) become SSE events: msg events with <epoch>:<id> ids, held gaps, one line of data each.
import { encodeGap, encodeMsg } from '@durable-pubsub/client-sdk/protocol';
import { describe, expect, it } from 'vitest';
import { httpChunk, SseCache, sseEvents } from './sse';
import { eachPayload, textFrame, textFrames } from './wire';

describe('sse events', () => {
  it('reads back every payload of frames laid back to back, at every length boundary', () => {
    const payloads = [0, 1, 125, 126, 127, 65535, 65536, 70000].map((len) => Buffer.from('x'.repeat(len)));
    const seen: number[] = [];
    eachPayload(textFrames(payloads), (p) => seen.push(p.length));
    expect(seen).toEqual([0, 1, 125, 126, 127, 65535, 65536, 70000]);
  });

  it('writes msg frames as msg events with their position as the id, and a held gap as a gap event', () => {
    const m1 = encodeMsg(7, 'a.b', { n: 1 }, 5);
    const gap = encodeGap('a.c', 7, 8, 'invalid');
    const m2 = encodeMsg(9, 'a.b', 'x'.repeat(300), 6);
    const bytes = textFrames([m1, gap, m2].map((s) => Buffer.from(s)));
    expect(sseEvents(bytes, 'E1').toString()).toBe(
      `id: E1:7\nevent: msg\ndata: ${m1}\n\nevent: gap\ndata: ${gap}\n\nid: E1:9\nevent: msg\ndata: ${m2}\n\n`,
    );
  });

  it('puts a stored frame with line breaks in its JSON whitespace on one data line, still the same JSON', () => {
    const stored = '{"op":"msg","id":3,"ch":"a",\r\n"data":{\n"k":1},"ts":2}';
    const out = sseEvents(textFrame(Buffer.from(stored)), 'E').toString();
    const data = out.split('\n').find((l) => l.startsWith('data: ')) as string;
    expect(out.split('\n\n')[0]?.split('\n')).toHaveLength(3);
    expect(JSON.parse(data.slice(6))).toEqual(JSON.parse(stored));
  });

  it('builds the body chunk of the same bytes once per epoch, whichever view of them is written', () => {
    const cache = new SseCache();
    const wire = textFrame(Buffer.from(encodeMsg(1, 'a', 1, 1)));
    const first = cache.chunk(wire, 'E');
    const events = sseEvents(wire, 'E');
    expect(first.toString()).toBe(`${events.length.toString(16)}\r\n${events}\r\n`);
    expect(cache.chunk(Buffer.from(wire.buffer, wire.byteOffset, wire.length), 'E')).toBe(first);
    expect(cache.chunk(wire, 'F').toString()).toContain('id: F:1\n');
    expect(httpChunk(Buffer.alloc(300)).subarray(0, 5).toString()).toBe('12c\r\n');
  });
});
