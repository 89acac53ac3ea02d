// The PostgreSQL outbox relay under faults: every committed row reaches a WebSocket client once, per channel in commit
// order, none of a rolled-back transaction; with two relays racing, one killed -9 mid-batch, PostgreSQL and Redis restarted.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ServerProcess,
  serverProcess,
  sleep,
  startTestRedis,
  startTestServer,
  type TestRedis,
  type TestServer,
  until,
} from '../support/env';
import { startTestPostgres, type TestPostgres } from '../support/postgres';
import { type Frame, RawClient } from '../support/raw-client';

const TABLE = 'dps_outbox';

let db: TestPostgres;
let redis: TestRedis;
/** the WebSocket clients' server (no relay: it stays up while relays die) */
let reader: TestServer;
let relays: ServerProcess[] = [];

beforeAll(async () => {
  [db, redis] = await Promise.all([startTestPostgres(), startTestRedis({ appendonly: true, appendfsync: 'always' })]);
  reader = await startTestServer(redis.url);
  const env = { DPS_OUTBOX_URL: db.url, DPS_OUTBOX_POLL: '100', DPS_REDIS_TIMEOUT: '1000', DPS_LOG_LEVEL: 'error' };
  // Two nodes started at once race for the relay's lock: one relays, one waits.
  relays = await Promise.all([serverProcess(redis.url, env), serverProcess(redis.url, env)]);
  await until(async () => (await db.sql.query(`SELECT to_regclass('${TABLE}') IS NOT NULL AS ok`)).rows[0].ok, 20_000, 'the outbox table');
}, 60_000);

afterAll(async () => {
  await Promise.all(relays.map((r) => r.stop()));
  await reader?.stop();
  await Promise.all([redis?.cleanup(), db?.cleanup()]);
});

/** The relay processes holding the lock now (by the application_name of their PostgreSQL session). */
async function holders(): Promise<number[]> {
  const { rows } = await db.sql.query(
    `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND l.classid::int = hashtext('dps_outbox_relay')`,
  );
  return rows.map((r) => Number(String(r.application_name).split(' ')[1]));
}

interface Committed {
  tag: string;
  ch: string;
  /** the row's outbox id (per channel, commit order) */
  id: number;
}

interface Written {
  committed: Committed[];
  rolledBack: string[];
}

/** `writers` connections, each running `txs` transactions of `rows` rows on random channels; every `rollbackEvery`th rolls back. */
async function write(prefix: string, opts: { writers: number; txs: number; rows: number; rollbackEvery?: number }): Promise<Written> {
  const out: Written = { committed: [], rolledBack: [] };
  await Promise.all(
    Array.from({ length: opts.writers }, async (_, w) => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      try {
        for (let t = 0; t < opts.txs; t++) {
          await c.query('BEGIN');
          const rows: Committed[] = [];
          // A transaction writes its channels in one order (sorted), as docs/outbox.md asks: two that took the
          // channels' locks in opposite orders would deadlock, and PostgreSQL would abort one.
          const planned = Array.from({ length: opts.rows }, (_, r) => ({
            tag: `${prefix}-w${w}-t${t}-r${r}`,
            ch: `${prefix}.${'abc'[(w + t + r) % 3]}`,
          }));
          planned.sort((x, y) => (x.ch < y.ch ? -1 : x.ch > y.ch ? 1 : 0));
          for (const { tag, ch } of planned) {
            const res = await c.query(`INSERT INTO ${TABLE} (channel, data) VALUES ($1, $2) RETURNING id`, [ch, { tag }]);
            rows.push({ tag, ch, id: Number(res.rows[0].id) });
          }
          if (opts.rollbackEvery && t % opts.rollbackEvery === opts.rollbackEvery - 1) {
            await c.query('ROLLBACK');
            out.rolledBack.push(...rows.map((r) => r.tag));
          } else {
            await c.query('COMMIT');
            out.committed.push(...rows);
          }
        }
      } finally {
        await c.end();
      }
    }),
  );
  return out;
}

async function client(prefix: string): Promise<RawClient> {
  const c = await RawClient.connect(reader.wsUrl);
  await c.hello({ recipient: `r-${prefix}`, subs: [`${prefix}.*`], from: 'head' });
  await c.next('live');
  return c;
}

const msgs = (c: RawClient): Frame[] => c.frames.filter((f) => f.op === 'msg');

/**
 * Exact accounting: every committed row once, none rolled back, the rows of each channel in their outbox id order
 * (= commit order), the connection's ids strictly increasing.
 */
async function account(c: RawClient, w: Written): Promise<{ delivered: number }> {
  await until(() => msgs(c).length >= w.committed.length, 30_000, `${w.committed.length} rows delivered`);
  await sleep(300); // a duplicate would come now
  const got = msgs(c);
  const ids = got.map((f) => f.id as number);
  expect(ids.every((id, i) => i === 0 || id > (ids[i - 1] as number))).toBe(true);
  const tags = got.map((f) => f.data.tag as string);
  expect([...tags].sort()).toEqual(w.committed.map((r) => r.tag).sort());
  const byTag = new Map(w.committed.map((r) => [r.tag, r]));
  for (const ch of new Set(w.committed.map((r) => r.ch))) {
    const delivered = got.filter((f) => f.ch === ch).map((f) => byTag.get(f.data.tag)?.id);
    const committed = w.committed
      .filter((r) => r.ch === ch)
      .map((r) => r.id)
      .sort((a, b) => a - b);
    expect(delivered).toEqual(committed);
  }
  for (const t of w.rolledBack) expect(tags).not.toContain(t);
  expect((await db.sql.query(`SELECT count(*)::int AS n FROM ${TABLE}`)).rows[0].n).toBe(0);
  return { delivered: got.length };
}

describe('outbox relay (real PostgreSQL, Redis, server processes)', () => {
  it('two relays race for the lock: one relays, every committed row once, none of a rolled-back transaction', async () => {
    await until(async () => (await holders()).length === 1, 10_000, 'one lock holder');
    const holder = (await holders())[0];
    expect(relays.map((r) => r.child.pid)).toContain(holder);
    const c = await client('race');
    const w = await write('race', { writers: 4, txs: 25, rows: 3, rollbackEvery: 5 });
    const { delivered } = await account(c, w);
    expect(await holders()).toEqual([holder]);
    console.log(
      `outbox race: 2 relays, 1 holder; ${w.committed.length} rows committed, ${w.rolledBack.length} rolled back, ${delivered} delivered`,
    );
    c.close();
  });

  it("a channel's rows come in commit order, across concurrent transactions; an aborted one publishes nothing", async () => {
    const c = await client('ord');
    const t1 = new pg.Client({ connectionString: db.url });
    const t2 = new pg.Client({ connectionString: db.url });
    const t3 = new pg.Client({ connectionString: db.url });
    await Promise.all([t1.connect(), t2.connect(), t3.connect()]);
    const ins = async (cl: pg.Client, ch: string, tag: string) =>
      Number((await cl.query(`INSERT INTO ${TABLE} (channel, data) VALUES ($1, $2) RETURNING id`, [ch, { tag }])).rows[0].id);
    await t1.query('BEGIN');
    const a1 = await ins(t1, 'ord.a', 'a1');
    // Another channel is not held up by t1.
    await t2.query('BEGIN');
    const b1 = await ins(t2, 'ord.b', 'b1');
    await t2.query('COMMIT');
    await until(() => msgs(c).length === 1, 10_000, 'b1 while t1 is open');
    // A second writer of ord.a waits for t1's commit before its row gets an id.
    await t3.query('BEGIN');
    const a2p = ins(t3, 'ord.a', 'a2');
    await until(
      async () =>
        (await db.sql.query(`SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND locktype = 'advisory'`)).rows[0].n === 1,
      10_000,
      't3 waiting for t1',
    );
    // Aborted transactions: a rollback, and one that fails (an empty channel breaks the table's check).
    await t2.query('BEGIN');
    await ins(t2, 'ord.b', 'gone1');
    await t2.query('ROLLBACK');
    await t2.query('BEGIN');
    await ins(t2, 'ord.b', 'gone2');
    await expect(ins(t2, '', 'gone3')).rejects.toThrow(/check constraint/);
    await t2.query('ROLLBACK');
    await t1.query('COMMIT');
    const a2 = await a2p;
    await t3.query('COMMIT');
    expect(a2).toBeGreaterThan(a1);
    const w: Written = {
      committed: [
        { tag: 'a1', ch: 'ord.a', id: a1 },
        { tag: 'b1', ch: 'ord.b', id: b1 },
        { tag: 'a2', ch: 'ord.a', id: a2 },
      ],
      rolledBack: ['gone1', 'gone2', 'gone3'],
    };
    await account(c, w);
    expect(msgs(c).map((f) => f.data.tag)).toEqual(['b1', 'a1', 'a2']);
    await Promise.all([t1.end(), t2.end(), t3.end()]);
    c.close();
  });

  it('the relay killed -9 mid-batch: the other node takes over, every committed row once, in order', async () => {
    const holder = (await holders())[0];
    const victim = relays.find((r) => r.child.pid === holder) as ServerProcess;
    const c = await client('kill');
    const writing = write('kill', { writers: 4, txs: 150, rows: 5, rollbackEvery: 10 });
    await until(() => msgs(c).length >= 600, 30_000, 'the relay under way');
    // Mid-batch for certain: a row lock on the oldest waiting row lets the relay read and publish its batch, and holds
    // its DELETE; the relay is killed there, between storing the batch and deleting its rows.
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    for (;;) {
      await blocker.query('BEGIN');
      const { rows } = await blocker.query(`SELECT id FROM ${TABLE} ORDER BY id LIMIT 1 FOR UPDATE`);
      if (rows.length) break;
      await blocker.query('ROLLBACK');
      await sleep(5);
    }
    await until(
      async () =>
        (
          await db.sql.query(
            `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE NOT l.granted AND a.application_name = $1 AND a.query LIKE 'DELETE%'`,
            [`dps-outbox-relay ${holder}`],
          )
        ).rows[0].n > 0,
      10_000,
      "the relay's DELETE held after its publish",
    );
    const atKill = msgs(c).length;
    await victim.kill();
    // Its backend still waits for the row lock and would finish the DELETE once it is free; a backend notices a gone
    // client only when it next reads or writes (or with client_connection_check_interval): end it as that would.
    await db.sql.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
      `dps-outbox-relay ${holder}`,
    ]);
    await blocker.query('ROLLBACK');
    await blocker.end();
    await until(async () => (await holders()).length === 1, 10_000, 'a new holder');
    const next = (await holders())[0];
    expect(next).not.toBe(holder);
    await victim.start(); // back as the standby
    const w = await writing;
    const { delivered } = await account(c, w);
    // Rows the killed relay had stored but not yet deleted: the new holder published them again, and the store kept one.
    const metrics = await (await fetch(`${relays.find((r) => r.child.pid === next)?.url}/metrics`)).text();
    const count = (outcome: string) =>
      Number(new RegExp(`^dps_outbox_rows_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(metrics)?.[1]);
    expect(metrics).toMatch(/^dps_outbox_relaying 1$/m);
    expect(count('duplicate')).toBeGreaterThan(0);
    console.log(
      `outbox relay kill -9: killed after ${atKill} rows delivered; ${w.committed.length} committed, ${w.rolledBack.length} rolled back, ` +
        `${delivered} delivered once; the new holder published ${count('published')} rows and found ${count('duplicate')} stored already`,
    );
    c.close();
  });

  it('a frozen relay (SIGSTOP) loses the lock when PostgreSQL ends its silent session; resumed, it stores nothing twice', async () => {
    const holder = (await holders())[0];
    const frozen = relays.find((r) => r.child.pid === holder) as ServerProcess;
    const c = await client('frz');
    const writing = write('frz', { writers: 2, txs: 100, rows: 3, rollbackEvery: 10 });
    await until(() => msgs(c).length >= 100, 30_000, 'the relay under way');
    frozen.child.kill('SIGSTOP');
    const t0 = performance.now();
    try {
      await until(async () => (await holders()).some((pid) => pid !== holder), 20_000, 'another node to take the lock');
    } finally {
      frozen.child.kill('SIGCONT');
    }
    const takeover = Math.round(performance.now() - t0);
    const w = await writing;
    const { delivered } = await account(c, w);
    expect((await holders()).length).toBe(1);
    expect((await holders())[0]).not.toBe(holder);
    console.log(
      `outbox relay frozen: lock taken over ${takeover} ms after SIGSTOP; ${w.committed.length} committed, ${w.rolledBack.length} rolled back, ${delivered} delivered once`,
    );
    c.close();
  });

  it('PostgreSQL restarted (immediate shutdown) while the relay drains a backlog: every committed row once', async () => {
    const c = await client('pgr');
    const before = await write('pgr', { writers: 1, txs: 1, rows: 3000 });
    await until(() => msgs(c).length >= 100, 30_000, 'the relay under way');
    const atKill = msgs(c).length;
    await db.kill();
    await sleep(300);
    await db.start();
    await db.sql.end().catch(() => {});
    db.sql = new pg.Client({ connectionString: db.url });
    await db.sql.connect();
    const after = await write('pgr2', { writers: 2, txs: 20, rows: 5, rollbackEvery: 4 });
    const w = { committed: [...before.committed, ...after.committed], rolledBack: after.rolledBack };
    // The client listens to pgr.*; pgr2 rows go to a second one.
    const c2 = await RawClient.connect(reader.wsUrl);
    await c2.hello({ recipient: 'r-pgr2', subs: ['pgr2.*'], from: 'earliest' });
    const one = await account(c, { committed: before.committed, rolledBack: [] });
    const two = await account(c2, { committed: after.committed, rolledBack: after.rolledBack });
    console.log(
      `outbox PostgreSQL restart: killed after ${atKill} of ${before.committed.length} rows delivered; then ${after.committed.length} more committed, ` +
        `${after.rolledBack.length} rolled back; delivered ${one.delivered} + ${two.delivered} (of ${w.committed.length}) once`,
    );
    c.close();
    c2.close();
  });

  it('Redis down for a while: the rows wait in the table, then every one is delivered once', async () => {
    let w: Written = { committed: [], rolledBack: [] };
    let waiting = 0;
    await redis.restart({
      whileDown: async () => {
        w = await write('rd', { writers: 2, txs: 20, rows: 5, rollbackEvery: 5 });
        await sleep(1000); // several relay attempts fail meanwhile
        waiting = (await db.sql.query(`SELECT count(*)::int AS n FROM ${TABLE}`)).rows[0].n;
      },
    });
    expect(waiting).toBe(w.committed.length);
    await until(async () => (await fetch(`${reader.url}/readyz`)).ok, 20_000, 'the reader ready');
    const c = await RawClient.connect(reader.wsUrl);
    await c.hello({ recipient: 'r-rd', subs: ['rd.*'], from: 'earliest' });
    const { delivered } = await account(c, w);
    console.log(
      `outbox Redis down: ${waiting} rows waited in the table, ${w.rolledBack.length} rolled back; ${delivered} delivered once after`,
    );
    c.close();
  });
});
