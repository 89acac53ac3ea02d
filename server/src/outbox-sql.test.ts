// The outbox DDL: docs/outbox.md shows exactly what the relay runs; table names are checked before they reach SQL.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config';
import { OUTBOX_TABLE_RE, outboxDdl } from './outbox-sql';

describe('outbox DDL', () => {
  it('docs/outbox.md shows the DDL the relay runs for dps_outbox, exactly', () => {
    const page = readFileSync(new URL('../../docs/outbox.md', import.meta.url), 'utf8');
    const block = /```sql no-run: the relay runs this[^\n]*\n([\s\S]*?)```/.exec(page)?.[1];
    expect(block?.trimEnd()).toBe(outboxDdl('dps_outbox'));
  });

  it('accepts plain lowercase names, optionally schema-qualified, and nothing that could be SQL', () => {
    for (const ok of ['dps_outbox', 'app.outbox', '_x1']) expect(OUTBOX_TABLE_RE.test(ok)).toBe(true);
    for (const bad of ['', 'Outbox', 'a-b', 'a;drop table x', 'a.b.c', '"x"', '1abc', `${'a'.repeat(64)}`])
      expect(OUTBOX_TABLE_RE.test(bad)).toBe(false);
    expect(() => loadConfig({ DPS_OUTBOX_TABLE: 'x; drop' })).toThrow(ConfigError);
    expect(() => loadConfig({ DPS_OUTBOX_URL: 'mysql://x' })).toThrow(/DPS_OUTBOX_URL must start with postgres/);
    expect(() => loadConfig({ DPS_OUTBOX_BATCH: '501' })).toThrow(/DPS_OUTBOX_BATCH must be 1-500/);
    expect(loadConfig({ DPS_OUTBOX_URL: 'postgres://u@127.0.0.1/db' })).toMatchObject({
      outboxUrl: 'postgres://u@127.0.0.1/db',
      outboxTable: 'dps_outbox',
      outboxPollMs: 1000,
      outboxBatch: 500,
    });
  });
});
