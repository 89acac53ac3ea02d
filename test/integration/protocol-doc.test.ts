// docs/protocol.md is kept true: its tables of ops, error codes and close codes name exactly what the protocol module has.
import { readFileSync } from 'node:fs';
import { CLIENT_OPS, CloseCode, ERROR_CODES, HTTP_STATUS, SERVER_OPS } from '@durable-pubsub/client-sdk/protocol';
import { describe, expect, it } from 'vitest';

const DOC = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');

/** The body rows of the (first) table under the `## <title>` heading, as trimmed cells. */
function table(title: string): string[][] {
  const start = DOC.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`docs/protocol.md has no "## ${title}" section`);
  const end = DOC.indexOf('\n## ', start + 1);
  const lines = DOC.slice(start, end < 0 ? undefined : end).split('\n');
  const first = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (let i = first + 2; i < lines.length && lines[i]?.startsWith('|'); i++)
    rows.push(
      (lines[i] as string)
        .replace(/\\\|/g, '\u0000')
        .split('|')
        .slice(1, -1)
        .map((c) => c.replace(/\u0000/g, '|').trim()),
    );
  return rows;
}

/** `name` in backticks: the name; anything else: the cell, for the failure to show. */
const code = (cell: string | undefined): string => /^`([^`]+)`$/.exec(cell ?? '')?.[1] ?? `not a code: ${cell}`;
const sorted = (xs: Iterable<string>) => [...xs].sort();

describe('docs/protocol.md', () => {
  it('lists every client op, and no other, in its client frames table', () => {
    expect(sorted(table('Client frames').map((r) => code(r[0])))).toEqual(sorted(CLIENT_OPS));
  });

  it('lists every server op, and no other, in its server frames table', () => {
    expect(sorted(table('Server frames').map((r) => code(r[0])))).toEqual(sorted(SERVER_OPS));
  });

  it('lists every error code with its HTTP status, and no other', () => {
    const rows = table('Error codes');
    expect(sorted(rows.map((r) => code(r[0])))).toEqual(sorted(ERROR_CODES));
    expect(Object.fromEntries(rows.map((r) => [code(r[0]), Number(r[1])]))).toEqual(HTTP_STATUS);
  });

  it('lists every close code with its number and name, and no other', () => {
    const rows = table('Close codes');
    expect(Object.fromEntries(rows.map((r) => [code(r[1]), Number(r[0])]))).toEqual(CloseCode);
    expect(rows.length).toBe(Object.keys(CloseCode).length);
  });
});
