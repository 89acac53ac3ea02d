// The outbox table's DDL and the relay's statements, for one table name (docs/outbox.md shows the same DDL).

/** A table name the relay accepts: a plain lowercase SQL identifier, optionally schema-qualified. */
export const OUTBOX_TABLE_RE = /^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$/;

/** The name without its schema: the base of the sequence, function, trigger and notification channel names. */
const bare = (table: string) => table.slice(table.indexOf('.') + 1);

/**
 * The table, its id sequence and its trigger. The trigger serializes the writers of one channel from their first
 * outbox row to their commit (a transaction-scoped advisory lock per channel) and only then takes the row's id, so
 * that, per channel, id order is commit order: a row can never become visible after a later id of its channel.
 * It also NOTIFYs the relay (delivered at commit, never for a rolled-back transaction).
 */
export function outboxDdl(table: string): string {
  const b = bare(table);
  return `CREATE SEQUENCE IF NOT EXISTS ${table}_id_seq;
CREATE TABLE IF NOT EXISTS ${table} (
  id bigint PRIMARY KEY,
  channel text NOT NULL CHECK (octet_length(channel) BETWEEN 1 AND 256),
  data jsonb NOT NULL,
  key text CHECK (char_length(key) BETWEEN 1 AND 256),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION ${table}_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('${b}'), hashtext(NEW.channel));
  NEW.id := nextval('${table}_id_seq');
  RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION ${table}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('${b}', '');
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS ${b}_order ON ${table};
CREATE TRIGGER ${b}_order BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION ${table}_order();
DROP TRIGGER IF EXISTS ${b}_notify ON ${table};
CREATE TRIGGER ${b}_notify AFTER INSERT ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION ${table}_notify();`;
}

/** The statements of the relay for one table. */
export function relaySql(table: string) {
  const b = bare(table);
  return {
    /** the notification channel the trigger NOTIFYs */
    channel: b,
    listen: `LISTEN ${b}`,
    exists: `SELECT to_regclass('${table}') IS NOT NULL AS ok`,
    /** one relay per table in the whole database, held by the relay's session */
    tryLock: `SELECT pg_try_advisory_lock(hashtext('dps_outbox_relay'), hashtext('${table}')) AS held`,
    /** the oldest rows first: the rows of each channel are in commit order (the trigger's lock) */
    batch: `SELECT o.id::text AS id, o.channel, o.data, o.key FROM ${table} o ORDER BY o.id LIMIT $1`,
    remove: `DELETE FROM ${table} WHERE id = ANY($1::bigint[])`,
  };
}
