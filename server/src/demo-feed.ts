// The demo feed behind `pnpm start`: orders, prices and alerts, so the dashboard is alive on first load.
import type { Json } from '@durable-pubsub/client-sdk/protocol';
import type { Config } from './config';
import type { DurablePubsub } from './durable-pubsub';
import type { Logger } from './log';

const REGIONS = ['eu', 'us'] as const;
const SYMBOLS = ['btc', 'eth', 'sol'] as const;
const prices: Record<string, number> = { btc: 64000, eth: 3200, sol: 150 };

/** Publishes through the embedding API, as an app would (or through anything with its `publish`). */
export function startDemoFeed(dps: { publish(ch: string, data: Json): Promise<unknown> }, everyMs = 250): () => void {
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

/**
 * The demo feed of `pnpm start`: published in process, or, with DPS_OUTBOX_URL set, written as rows into the outbox
 * table (each its own transaction, as an app would), which the relay publishes. Resolves with its stop.
 */
export async function runDemoFeed(dps: Pick<DurablePubsub, 'publish'>, config: Config, log: Logger): Promise<() => Promise<void>> {
  if (!config.outboxUrl) {
    const stop = startDemoFeed(dps);
    return async () => stop();
  }
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: config.outboxUrl, max: 2 });
  pool.on('error', () => {}); // PostgreSQL restarting: the pool replaces the client; the feed skips a beat
  log.info('the demo feed writes into the outbox table; the relay publishes it', { table: config.outboxTable });
  const insert = `INSERT INTO ${config.outboxTable} (channel, data) VALUES ($1, $2::jsonb)`;
  const stop = startDemoFeed({ publish: (ch, data) => pool.query(insert, [ch, JSON.stringify(data)]) });
  return async () => {
    stop();
    await pool.end().catch(() => {});
  };
}
