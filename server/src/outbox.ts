// The outbox relay: publishes the committed rows of a PostgreSQL table into the log, each once, per channel in commit order.
import type { Json } from '@durable-pubsub/client-sdk/protocol';
import { toClientFrame } from '@durable-pubsub/client-sdk/protocol';
import type pg from 'pg';
import type { Logger } from './log';
import { outboxDdl, relaySql } from './outbox-sql';

/** stopped → connecting → standby (another relay holds the lock) ⇄ relaying; any failure → connecting again */
export type RelayState = 'stopped' | 'connecting' | 'standby' | 'relaying';

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;

export interface RelayOptions {
  url: string;
  table: string;
  /** ms between polls when no notification came, and between tries for the lock while another relay holds it */
  pollMs: number;
  /** rows per batch (≤ 500) */
  batch: number;
  /**
   * ms after which a silent relay session counts as dead, on both sides: PostgreSQL ends a session idle that long (its
   * lock goes to another node: a frozen or cut-off relay is taken over), and the relay gives up on a query that long.
   */
  silentMs: number;
  log: Logger;
  /** the store's publish: one message, stored once per key */
  publish(ch: string, data: Json, key: string): Promise<{ id: number; dup: boolean }>;
  /** sends the publishes gathered so far (so a batch goes to Redis alone, as one script call) */
  flush(): void;
}

export interface RelayStats {
  /** rows stored as new messages */
  published: number;
  /** rows whose key was stored already (a relay that died after publishing, before deleting) */
  duplicates: number;
  /** rows that can never be published (bad channel or key): logged and deleted */
  rejected: number;
  /** batches that failed (Redis or PostgreSQL unavailable); retried */
  failures: number;
}

interface Row {
  id: string;
  channel: string;
  data: Json;
  key: string | null;
}

/** The key a row is published with: the app's, or one made of the table and the row's id. */
export const rowKey = (table: string, row: { id: string; key: string | null }) => row.key ?? `outbox:${table}:${row.id}`;

export class OutboxRelay {
  state: RelayState = 'stopped';
  readonly stats: RelayStats = { published: 0, duplicates: 0, rejected: 0, failures: 0 };
  private client: pg.Client | null = null;
  private wake: (() => void) | null = null;
  private running: Promise<void> | null = null;
  private stopping = false;
  private readonly sql: ReturnType<typeof relaySql>;

  constructor(private readonly o: RelayOptions) {
    this.sql = relaySql(o.table);
  }

  /** The one writer of the state. */
  private setState(next: RelayState): void {
    if (next === this.state) return;
    const level = next === 'relaying' || this.state === 'relaying' ? 'info' : 'debug';
    this.o.log[level](`outbox relay ${this.state} -> ${next}`, { table: this.o.table });
    this.state = next;
  }

  start(): void {
    this.stopping = false;
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.client?.end().catch(() => {});
    await this.running;
    this.running = null;
    this.setState('stopped');
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private async loop(): Promise<void> {
    let attempt = 0;
    while (!this.stopping) {
      this.setState('connecting');
      try {
        await this.session();
        attempt = 0;
      } catch (err) {
        if (this.stopping) break;
        this.stats.failures++;
        this.o.log.warn('outbox relay: PostgreSQL failed; reconnecting', { err: String(err) });
        attempt++;
      } finally {
        const c = this.client;
        this.client = null;
        await c?.end().catch(() => {});
      }
      if (!this.stopping) await this.sleep(Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(attempt, 5)));
    }
  }

  /**
   * One PostgreSQL session: the lock, LISTEN, the reads and deletes all on it, so that a relay whose session ended
   * (and so lost the lock to another) cannot delete anything more; what it published meanwhile is published again by
   * the next holder under the same keys, and stored once.
   */
  private async session(): Promise<void> {
    // Loaded only by a server that relays: the others never load the PostgreSQL client.
    const { default: pgModule } = await import('pg');
    const client = new pgModule.Client({
      connectionString: this.o.url,
      application_name: `dps-outbox-relay ${process.pid}`,
      connectionTimeoutMillis: 5000,
      query_timeout: this.o.silentMs,
      keepAlive: true,
    });
    this.client = client;
    let broken: Error | null = null;
    client.on('error', (err) => {
      broken = err;
      this.wake?.();
    });
    client.on('end', () => {
      broken ??= new Error('PostgreSQL closed the connection');
      this.wake?.();
    });
    client.on('notification', () => this.wake?.());
    await client.connect();
    // PostgreSQL 14+: a session that says nothing for silentMs is ended by the server, so its lock does not outlive a
    // relay that froze or lost its network (older servers keep it until TCP gives up; the setting is then skipped).
    await client.query(`SELECT set_config('idle_session_timeout', $1, false)`, [String(this.o.silentMs)]).catch(() => {});
    const check = () => {
      if (broken) throw broken;
    };
    while (!this.stopping) {
      const { rows } = await client.query<{ held: boolean }>(this.sql.tryLock);
      if (rows[0]?.held) break;
      this.setState('standby');
      await this.sleep(this.o.pollMs);
      check();
    }
    if (this.stopping) return;
    if (!(await client.query<{ ok: boolean }>(this.sql.exists)).rows[0]?.ok) {
      await client.query(outboxDdl(this.o.table));
      this.o.log.info('outbox relay: created the outbox table', { table: this.o.table });
    }
    await client.query(this.sql.listen);
    this.setState('relaying');
    while (!this.stopping) {
      check();
      // Whatever committed before this read is in it or in the next one: a notification during a batch wakes the next sleep at once.
      let more = true;
      let woken = false;
      this.wake = () => {
        woken = true;
      };
      while (more && !this.stopping) {
        const { rows } = await client.query<Row>(this.sql.batch, [this.o.batch]);
        if (rows.length) await this.relay(client, rows);
        more = rows.length === this.o.batch;
        check();
      }
      if (!woken) await this.sleep(this.o.pollMs);
    }
  }

  /** Publishes one batch (one script call: all stored or none) then deletes its rows. */
  private async relay(client: pg.Client, rows: Row[]): Promise<void> {
    const good: Row[] = [];
    for (const r of rows) {
      const key = rowKey(this.o.table, r);
      const checked = toClientFrame({ op: 'pub', ch: r.channel, data: r.data, key });
      if (checked.ok) good.push(r);
      else {
        this.stats.rejected++;
        this.o.log.error('outbox relay: a row can never be published; deleted', { id: r.id, channel: r.channel, err: checked.message });
      }
    }
    this.o.flush();
    const stored = good.map((r) => this.o.publish(r.channel, r.data, rowKey(this.o.table, r)));
    this.o.flush();
    let results: { dup: boolean }[];
    try {
      results = await Promise.all(stored);
    } catch (err) {
      // Redis is down or slow: nothing of this batch was stored (a publish answered with an error is never stored
      // later); the rows stay and are read again.
      this.stats.failures++;
      this.o.log.warn('outbox relay: publishing failed; the rows wait', { err: String(err) });
      await this.sleep(this.o.pollMs);
      return;
    }
    for (const r of results) r.dup ? this.stats.duplicates++ : this.stats.published++;
    await client.query(this.sql.remove, [rows.map((r) => r.id)]);
  }
}
