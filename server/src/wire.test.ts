// Frames built once by wire.ts are byte for byte what ws would send, and a ws client reads them back.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import * as wsModule from 'ws';
import { WebSocket, WebSocketServer } from 'ws';
import { joinFrames, MsgsCache, msgsFrames, textFrame, textFrames, textFrameViews } from './wire';

/** ws's own framing (exported at runtime, not in its types) */
const { Sender } = wsModule as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } };
const LENGTHS = [0, 1, 125, 126, 127, 65535, 65536, 70000];
const payload = (len: number) => Buffer.from('x'.repeat(len));

describe('wire', () => {
  it('frames a payload exactly as ws does, at every length boundary', () => {
    for (const len of LENGTHS) {
      const p = payload(len);
      const ws = Sender.frame(p, { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false });
      expect(textFrame(p).equals(Buffer.concat(ws))).toBe(true);
    }
  });

  it('puts several frames back to back that a ws client reads as separate messages', async () => {
    const wss = new WebSocketServer({ port: 0, perMessageDeflate: false });
    const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
    wss.on('connection', (ws) => {
      const socket = (ws as unknown as { _socket: import('node:net').Socket })._socket;
      const payloads = LENGTHS.map((len, i) => Buffer.from(`{"n":${i},"pad":"${'y'.repeat(len)}"}`));
      socket.write(textFrames(payloads.slice(1)));
      ws.send('{"end":true}');
    });
    const client = new WebSocket(url);
    const got: string[] = [];
    client.on('message', (d) => got.push(String(d)));
    await once(client, 'open');
    while (!got.includes('{"end":true}')) await new Promise((r) => setTimeout(r, 10));
    client.close();
    wss.close();
    expect(got.map((m) => (m === '{"end":true}' ? 'end' : `${JSON.parse(m).n}:${JSON.parse(m).pad.length}`))).toEqual([
      ...LENGTHS.slice(1).map((len, i) => `${i + 1}:${len}`),
      'end',
    ]);
  });

  it('frames a read once as views, and joins consecutive views without copying', () => {
    const payloads = LENGTHS.map((len) => payload(len));
    const views = textFrameViews(payloads);
    expect(views.map((v, i) => v.equals(textFrame(payloads[i] as Buffer)))).toEqual(LENGTHS.map(() => true));
    const all = joinFrames(views.slice(2, 6));
    expect(all.equals(textFrames(payloads.slice(2, 6)))).toBe(true);
    // the same memory as the read: one buffer shared by every client replaying it
    expect([all.buffer === views[2]?.buffer, all.byteOffset]).toEqual([true, views[2]?.byteOffset]);
    // frames not back to back (a message skipped, or two reads merged) are copied, in order
    const skipped = [views[1], views[3], views[2]] as Buffer[];
    const copied = joinFrames(skipped);
    expect(copied.equals(Buffer.concat(skipped))).toBe(true);
    expect(copied.buffer === views[1]?.buffer && copied.byteOffset === views[1]?.byteOffset).toBe(false);
  });

  it('turns stored msg frames into msgs frames of at most maxBytes that a ws client reads back', async () => {
    const msgs = LENGTHS.slice(0, 6).map((len, i) => ({ op: 'msg', id: i + 1, ch: 'c', data: 'z'.repeat(len), ts: 5 }));
    const payloads = msgs.map((m) => Buffer.from(JSON.stringify(m)));
    const views = textFrameViews(payloads);
    // {"op":"msgs","msgs":[ + payloads and commas + ]}
    const wrapped = (ps: Buffer[]) => 21 + ps.reduce((n, p) => n + p.length, 0) + ps.length - 1 + 2;
    const three = wrapped(payloads.slice(0, 3));
    const wss = new WebSocketServer({ port: 0, perMessageDeflate: false });
    const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
    wss.on('connection', (ws) => {
      const socket = (ws as unknown as { _socket: import('node:net').Socket })._socket;
      socket.write(msgsFrames(views, three)); // the first three fit exactly
      socket.write(msgsFrames(views, three - 1)); // one byte less: the third starts the next frame
      socket.write(msgsFrames(views.slice(0, 2)));
      ws.send('{"end":true}');
    });
    const client = new WebSocket(url);
    const got: { op?: string; msgs?: unknown[]; bytes: number }[] = [];
    client.on('message', (d) => got.push({ ...JSON.parse(String(d)), bytes: String(d).length }));
    await once(client, 'open');
    while (!got.some((f) => f.op === undefined)) await new Promise((r) => setTimeout(r, 10));
    client.close();
    wss.close();
    expect(got.map((f) => f.msgs?.length)).toEqual([3, 1, 1, 1, 2, 1, 1, 1, 1, 2, undefined]);
    expect(got.map((f) => f.bytes).slice(0, 5)).toEqual([
      three,
      ...payloads.slice(3).map((p) => wrapped([p])),
      wrapped(payloads.slice(0, 2)),
    ]);
    expect(got.slice(0, 4).flatMap((f) => f.msgs)).toEqual(msgs);
    expect(got.slice(4, 9).flatMap((f) => f.msgs)).toEqual(msgs);
    expect(got[9]?.msgs).toEqual(msgs.slice(0, 2));
  });

  it('builds the msgs frames of a run of one read once for every reader, and only for the same run', () => {
    const views = textFrameViews([1, 2, 3, 4].map((id) => Buffer.from(JSON.stringify({ op: 'msg', id, ch: 'c', data: id, ts: 1 }))));
    const cache = new MsgsCache();
    const sharedMsgsFrames = (frames: Buffer[]) => cache.frames(frames);
    const all = sharedMsgsFrames(views);
    expect(all.equals(msgsFrames(views))).toBe(true);
    expect(sharedMsgsFrames([...views])).toBe(all); // another reader, the same bytes: the same buffer
    const firstTwo = sharedMsgsFrames(views.slice(0, 2)); // same start, shorter run
    expect([firstTwo.equals(msgsFrames(views.slice(0, 2))), firstTwo === all]).toEqual([true, false]);
    const skipping = [views[0], views[2]] as Buffer[]; // not back to back: built each time
    expect(sharedMsgsFrames(skipping).equals(msgsFrames(skipping))).toBe(true);
    expect(sharedMsgsFrames(skipping)).not.toBe(sharedMsgsFrames(skipping));
    expect(new MsgsCache().frames(views)).not.toBe(all); // another server's cache: its own
  });
});
