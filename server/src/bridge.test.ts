// frameId reads the id straight from the bytes of a frame built by the publish script.
import { encodeMsg } from '@durable-pubsub/client-sdk/protocol';
import { describe, expect, it } from 'vitest';
import { frameId } from './bridge';

describe('frameId', () => {
  it('reads the id of a script-built frame', () => {
    for (const id of [1, 42, 9007199254740991]) expect(frameId(Buffer.from(`{"op":"msg","id":${id},"ch":"c","data":1,"ts":2}`))).toBe(id);
  });

  it('reads the id of a frame from encodeMsg, at an offset in a larger buffer', () => {
    const frame = Buffer.from(`xx${encodeMsg(1234, 'c', { a: 1 }, 5)}`);
    expect(frameId(frame, 2)).toBe(1234);
  });
});
