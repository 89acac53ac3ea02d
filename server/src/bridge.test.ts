// frameId reads the id straight from the bytes of a frame built by the publish script.
import { describe, expect, it } from 'vitest';
import { frameId } from './bridge';

describe('frameId', () => {
  it('reads the id of a script-built frame', () => {
    for (const id of [1, 42, 9007199254740991]) expect(frameId(Buffer.from(`{"op":"msg","id":${id},"ch":"c","data":1,"ts":2}`))).toBe(id);
  });
});
