import { afterEach, describe, expect, it, vi } from 'vitest';
import { sweep } from './sweep';

describe('sweep', () => {
  afterEach(() => vi.useRealTimers());

  it('visits every member once per period, a slice per tick, and members added meanwhile in the same round', () => {
    vi.useFakeTimers();
    const set = new Set(Array.from({ length: 100 }, (_, i) => i));
    const seen: number[] = [];
    const stop = sweep(set, 1000, (m) => seen.push(m));
    vi.advanceTimersByTime(20); // one tick of 1000 / 50
    expect(seen).toEqual([0, 1]);
    set.add(100);
    set.delete(50);
    vi.advanceTimersByTime(980);
    expect(seen).toEqual([...Array.from({ length: 100 }, (_, i) => i).filter((i) => i !== 50), 100]);
    seen.length = 0;
    vi.advanceTimersByTime(1000);
    expect(seen).toEqual([...Array.from({ length: 100 }, (_, i) => i).filter((i) => i !== 50), 100]);
    stop();
    vi.advanceTimersByTime(5000);
    expect(seen).toHaveLength(100);
  });

  it('visits nothing while the set is empty, and starts with the next round once it is not', () => {
    vi.useFakeTimers();
    const set = new Set<string>();
    const seen: string[] = [];
    const stop = sweep(set, 100, (m) => seen.push(m));
    vi.advanceTimersByTime(50);
    set.add('a');
    vi.advanceTimersByTime(49);
    expect(seen).toEqual([]);
    // The round that began empty still visits what joined it, on its last tick.
    vi.advanceTimersByTime(1);
    expect(seen).toEqual(['a']);
    vi.advanceTimersByTime(100);
    expect(seen).toEqual(['a', 'a']);
    stop();
  });

  it('calls `ticked` after each tick that visited someone, once those visits are done', () => {
    vi.useFakeTimers();
    const set = new Set(Array.from({ length: 4 }, (_, i) => i));
    const ticks: number[][] = [];
    let gathered: number[] = [];
    const stop = sweep(
      set,
      100, // 10 ticks of 10 ms: one member each, then nothing until the round's end
      (m) => gathered.push(m),
      () => {
        ticks.push(gathered);
        gathered = [];
      },
    );
    vi.advanceTimersByTime(100);
    expect(ticks).toEqual([[0], [1], [2], [3]]);
    set.clear();
    vi.advanceTimersByTime(200);
    expect(ticks).toHaveLength(4);
    stop();
  });
});
