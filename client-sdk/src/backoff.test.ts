// backoff: exponential ceiling, full jitter, capped.
import { describe, expect, it } from 'vitest';
import { backoff } from './backoff';

describe('backoff', () => {
  it('draws uniformly below an exponential ceiling capped at max', () => {
    expect([0, 1, 2, 3, 10, 100].map((a) => backoff(a, 250, 15_000, () => 0.999999))).toEqual([249, 499, 999, 1999, 14999, 14999]);
    expect([0, 5, 50].map((a) => backoff(a, 250, 15_000, () => 0))).toEqual([0, 0, 0]);
    expect(backoff(2, 250, 15_000, () => 0.5)).toBe(500);
  });
});
