// The catch-up budget: shares of read-ahead (bytes, by the frames' measured size) and of send buffers, per pass running.
import { describe, expect, it } from 'vitest';
import { ReadAhead } from './replay';

describe('ReadAhead', () => {
  it('shares its bytes between the passes running, by the size of the frames read', () => {
    const r = new ReadAhead(1 << 20, 8 << 20, 64 << 10);
    r.active = 4;
    expect(r.frames()).toBe((1 << 20) / 4 / 256);
    for (let i = 0; i < 100; i++) r.observe(1024 * 100, 100);
    expect(r.frames()).toBeCloseTo((1 << 20) / 4 / 1024, 0);
  });

  it('gives a catching-up connection its share of the send budget, between the floor and the configured mark', () => {
    const r = new ReadAhead(1 << 20, 8 << 20, 64 << 10);
    r.active = 1;
    expect(r.highWater(1 << 20)).toBe(1 << 20);
    r.active = 32;
    expect(r.highWater(1 << 20)).toBe(256 << 10);
    r.active = 1000;
    expect(r.highWater(1 << 20)).toBe(64 << 10);
  });
});
