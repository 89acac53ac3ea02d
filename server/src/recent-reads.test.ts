// Reads answered from a read kept that holds them: a prefix of one on its way, a stretch of one answered, never past its end.
import { describe, expect, it } from 'vitest';
import { RecentReads } from './recent-reads';

interface C {
  watermark: number;
  ids: number[];
  frames: Buffer[];
  from?: number;
  to?: number;
}

/** The ids a chunk answers (a window of a kept read, or all of it). */
const ids = (c: C) => c.ids.slice(c.from ?? 0, c.to ?? c.ids.length);

/** A channel holding `ids` (and nothing trimmed); counts the reads that reach it. */
function channel(ids: number[]) {
  let reads = 0;
  const fetch = (after: number, upTo: number, limit: number) => () => {
    reads++;
    const got = ids.filter((id) => id > after && id <= upTo).slice(0, limit);
    return Promise.resolve<C>({ watermark: 0, ids: got, frames: got.map((id) => Buffer.from(String(id))) });
  };
  return { fetch, reads: () => reads };
}

const read = (r: RecentReads<C>, c: ReturnType<typeof channel>, after: number, upTo: number, limit: number) =>
  r.read('a', after, upTo, limit, c.fetch(after, upTo, limit));

describe('RecentReads', () => {
  it('answers a smaller read from the start of a larger one on its way', async () => {
    const r = new RecentReads<C>();
    const c = channel([2, 4, 6, 8, 10, 12]);
    const [big, small] = await Promise.all([read(r, c, 0, 12, 4), read(r, c, 0, 12, 2)]);
    expect(ids(big)).toEqual([2, 4, 6, 8]);
    expect(ids(small)).toEqual([2, 4]);
    expect(small.frames.slice(small.from, small.to).map(String)).toEqual(['2', '4']);
    expect(c.reads()).toBe(1);
  });

  it('answers a read inside one answered, from any point in it, while it holds enough ids', async () => {
    const r = new RecentReads<C>();
    const c = channel([2, 4, 6, 8, 10, 12]);
    await read(r, c, 0, 12, 4);
    expect(ids(await read(r, c, 4, 12, 2))).toEqual([6, 8]);
    expect(ids(await read(r, c, 3, 12, 2))).toEqual([4, 6]);
    expect(c.reads()).toBe(1);
    // [10, 12] lie past the read's end, which was full: more may follow, Redis answers.
    expect(ids(await read(r, c, 6, 12, 4))).toEqual([8, 10, 12]);
    expect(c.reads()).toBe(2);
    // That one was not full: it holds all up to the head.
    expect(ids(await read(r, c, 8, 12, 2))).toEqual([10, 12]);
    expect(c.reads()).toBe(2);
  });

  it('answers up to the head from a read that was not full: it holds everything up to it', async () => {
    const r = new RecentReads<C>();
    const c = channel([2, 4, 6]);
    await read(r, c, 0, 6, 10);
    expect(ids(await read(r, c, 2, 6, 1))).toEqual([4]);
    expect(ids(await read(r, c, 4, 6, 5))).toEqual([6]);
    expect(ids(await read(r, c, 6, 6, 5))).toEqual([]);
    expect(c.reads()).toBe(1);
    // Another head is another read.
    await read(r, c, 0, 5, 10);
    expect(c.reads()).toBe(2);
  });

  it('does not share a failed read', async () => {
    const r = new RecentReads<C>();
    const c = channel([2, 4]);
    await expect(r.read('a', 0, 4, 2, () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    await new Promise((res) => setTimeout(res, 0));
    expect(ids(await read(r, c, 0, 4, 1))).toEqual([2]);
    expect(c.reads()).toBe(1);
  });
});
