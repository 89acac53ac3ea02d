// The demo feed behind `pnpm start`: orders, prices and alerts, so the dashboard is alive on first load.
import type { DurablePubsub } from './durable-pubsub';

const REGIONS = ['eu', 'us'] as const;
const SYMBOLS = ['btc', 'eth', 'sol'] as const;
const prices: Record<string, number> = { btc: 64000, eth: 3200, sol: 150 };

/** Publishes through the embedding API, as an app would. */
export function startDemoFeed(dps: Pick<DurablePubsub, 'publish'>, everyMs = 250): () => void {
  let n = 0;
  const timer = setInterval(() => {
    n++;
    const jobs: Promise<unknown>[] = [];
    const region = REGIONS[n % 2] as string;
    jobs.push(dps.publish(`orders.${region}`, { order: n, amount: Math.round(Math.random() * 50000) / 100, region }));
    const sym = SYMBOLS[n % 3] as string;
    prices[sym] = Math.round((prices[sym] as number) * (1 + (Math.random() - 0.5) / 100) * 100) / 100;
    jobs.push(dps.publish(`prices.${sym}`, { symbol: sym, price: prices[sym] as number }));
    if (n % 20 === 0) jobs.push(dps.publish('alerts.system', { level: 'info', text: `heartbeat ${n / 20}` }));
    Promise.all(jobs).catch(() => {}); // Redis down: the feed just skips a beat
  }, everyMs);
  return () => clearInterval(timer);
}
