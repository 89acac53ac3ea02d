// Copies a log of the original "durable Redis pubsub" design (sorted sets MESSAGES and PROC_STATS) into a namespace.
import { type Json, patternSetKey } from '@durable-pubsub/client-sdk/protocol';
import { Redis } from 'ioredis';
import type { Store } from './store';

export interface LegacyImport {
  sourceUrl: string;
  /** sorted set: score = message id, member = the message */
  messagesKey: string;
  /** sorted set: member = recipient, score = the last id it processed */
  statsKey: string;
  /** the channel the messages land on */
  channel: string;
  progress?: (done: number, total: number) => void;
}

const PAGE = 1000;

function parse(member: string): Json {
  try {
    return JSON.parse(member) as Json;
  } catch {
    return member;
  }
}

/**
 * Publishes the legacy messages in id order (each with the idempotency key
 * `legacy:<key>:<id>`, so a second run stores nothing twice), then positions
 * each legacy recipient after the new id of the last message it processed.
 */
export async function importLegacy(
  store: Store,
  o: LegacyImport,
): Promise<{ messages: number; duplicates: number; recipients: number; channel: string }> {
  const src = new Redis(o.sourceUrl, { protocol: 2, lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await src.connect();
    const total = await src.zcard(o.messagesKey);
    const legacyIds: number[] = [];
    const newIds: number[] = [];
    let duplicates = 0;
    let after = '-inf';
    for (;;) {
      const page = await src.zrangebyscore(o.messagesKey, after, '+inf', 'WITHSCORES', 'LIMIT', 0, PAGE);
      if (!page.length) break;
      const jobs: Promise<{ id: number; dup: boolean }>[] = [];
      for (let i = 0; i < page.length; i += 2) {
        const score = page[i + 1] as string;
        legacyIds.push(Number(score));
        jobs.push(store.publish(o.channel, parse(page[i] as string), `legacy:${o.messagesKey}:${score}`));
      }
      for (const r of await Promise.all(jobs)) {
        newIds.push(r.id);
        if (r.dup) duplicates++;
      }
      after = `(${page[page.length - 1]}`;
      o.progress?.(legacyIds.length, total);
    }

    const stats = await src.zrangebyscore(o.statsKey, '-inf', '+inf', 'WITHSCORES');
    for (let i = 0; i < stats.length; i += 2) {
      const processed = Number(stats[i + 1]);
      // The new id of the last legacy message at or below what the recipient processed.
      let lo = 0;
      let hi = legacyIds.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((legacyIds[mid] as number) <= processed) lo = mid + 1;
        else hi = mid;
      }
      await store.subscriptions.place(stats[i] as string, patternSetKey([o.channel]), lo === 0 ? 0 : (newIds[lo - 1] as number), true);
    }
    return { messages: legacyIds.length, duplicates, recipients: stats.length / 2, channel: o.channel };
  } finally {
    src.disconnect();
  }
}
