// frameId and frameChannel read the id and the channel straight from the bytes of a frame built by the publish script.
import { encodeMsg } from '@durable-pubsub/client-sdk/protocol';
import { describe, expect, it } from 'vitest';
import { frameChannel, frameId } from './bridge';

describe('frameId', () => {
  it('reads the id of a script-built frame', () => {
    for (const id of [1, 42, 9007199254740991]) expect(frameId(Buffer.from(`{"op":"msg","id":${id},"ch":"c","data":1,"ts":2}`))).toBe(id);
  });

  it('reads the id of a frame from encodeMsg, at an offset in a larger buffer', () => {
    const frame = Buffer.from(`xx${encodeMsg(1234, 'c', { a: 1 }, 5)}`);
    expect(frameId(frame, 2)).toBe(1234);
  });
});

describe('frameChannel', () => {
  it('reads the channel of frames from encodeMsg and of script-built frames, escapes included', () => {
    for (const ch of ['c', 'orders.eu', 'a"b\\c', 'é/ü 日本', 'x\u2028y', '\u0001'])
      expect(frameChannel(Buffer.from(encodeMsg(7, ch, { a: 1 }, 5)))).toBe(ch);
    // cjson (FCALL dps_publish) escapes '/'
    expect(frameChannel(Buffer.from('{"op":"msg","id":3,"ch":"a\\/b","data":1,"ts":2}'))).toBe('a/b');
  });

  it('is null for a frame of any other shape', () => {
    for (const f of [
      '',
      '{"op":"msg","id":3}',
      '{"op":"msg","id":3,"ch":"unterminated',
      '{"op":"msg","id":3,"data":1,"ch":"c"}',
      'garbage',
    ])
      expect(frameChannel(Buffer.from(f))).toBeNull();
  });
});
