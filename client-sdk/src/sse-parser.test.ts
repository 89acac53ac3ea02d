// The event-stream parser, fed real streams whole and cut at every position: the same events, whatever the line endings.
import { describe, expect, it } from 'vitest';
import { type SseEvent, sseParser } from './sse-parser';

/** Parses `chunks` fed in order; returns every event dispatched. */
function parse(...chunks: string[]): SseEvent[] {
  const out: SseEvent[] = [];
  const feed = sseParser((e) => out.push(e));
  for (const c of chunks) feed(c);
  return out;
}

// What the server sends: a retry line, a welcome, a keep-alive comment, a msg with an id, a gap, a ping, a close.
const STREAM = [
  'retry: 1000',
  '',
  'event: welcome',
  'data: {"op":"welcome","epoch":"e1"}',
  '',
  ': keep-alive',
  '',
  'id: e1:7',
  'event: msg',
  'data: {"op":"msg","id":7,"ch":"a","data":"ü€😀","ts":1}',
  '',
  'event: gap',
  'data: {"op":"gap","ch":"a","after":7,"upTo":9,"reason":"retention"}',
  '',
  'event: ping',
  'data: {}',
  '',
  'event: close',
  'data: {"code":1001,"reason":"shutdown"}',
  '',
  '',
];
const EVENTS: SseEvent[] = [
  { event: 'welcome', data: '{"op":"welcome","epoch":"e1"}' },
  { event: 'msg', data: '{"op":"msg","id":7,"ch":"a","data":"ü€😀","ts":1}', id: 'e1:7' },
  { event: 'gap', data: '{"op":"gap","ch":"a","after":7,"upTo":9,"reason":"retention"}' },
  { event: 'ping', data: '{}' },
  { event: 'close', data: '{"code":1001,"reason":"shutdown"}' },
];

describe('sseParser', () => {
  it('dispatches each event at its blank line, with its type, data and id; comments and retry lines are dropped', () => {
    expect(parse(STREAM.join('\n'))).toEqual(EVENTS);
  });

  it('reads \\r\\n and \\r line endings as \\n', () => {
    expect(parse(STREAM.join('\r\n'))).toEqual(EVENTS);
    expect(parse(STREAM.join('\r'))).toEqual(EVENTS);
  });

  it('gives the same events however the stream is cut into chunks, even between the \\r and \\n of one line end', () => {
    for (const eol of ['\n', '\r\n', '\r']) {
      const text = STREAM.join(eol);
      for (let i = 0; i <= text.length; i++) expect([eol, i, parse(text.slice(0, i), text.slice(i))]).toEqual([eol, i, EVENTS]);
      expect([eol, parse(...text)]).toEqual([eol, EVENTS]);
    }
  });

  it('joins data lines with \\n and takes one leading space off a value, no more', () => {
    expect(parse('data: a\ndata:b\ndata:  c\ndata\n\n')).toEqual([{ event: 'message', data: 'a\nb\n c\n' }]);
  });

  it('dispatches nothing for an event without data, nor for one whose blank line has not come yet', () => {
    expect(parse('event: live\n\nid: e:1\n\n: only a comment\n\ndata: {}\n')).toEqual([]);
  });

  it('forgets the type and id of an event once it is dispatched', () => {
    expect(parse('event: msg\nid: e:1\ndata: 1\n\ndata: 2\n\n')).toEqual([
      { event: 'msg', data: '1', id: 'e:1' },
      { event: 'message', data: '2' },
    ]);
  });

  it('ignores a byte order mark at the start of the stream, and ids that hold a NUL', () => {
    expect(parse('\uFEFF', 'event: a\nid: x\0y\ndata: 1\n\n')).toEqual([{ event: 'a', data: '1' }]);
  });
});
