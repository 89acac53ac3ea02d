// Frames built once by wire.ts are byte for byte what ws would send, and a ws client reads them back.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import * as wsModule from 'ws';
import { WebSocket, WebSocketServer } from 'ws';
import { textFrame, textFrames } from './wire';

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
});
