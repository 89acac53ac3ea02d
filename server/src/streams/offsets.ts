// Durable Streams offsets and cursors: what the server mints and what a request may give back.

/**
 * An offset is `<16 digits>_<16 digits>`: a segment number (always 0: reserved, see docs/durable-streams.md) and the
 * stream's byte position (JSON streams: the position of a message's stored JSON text). Opaque to clients, sorted as
 * text as by position, never `-1` or `now`; the same shape as the reference server's, which clients and tests expect.
 */
export function formatOffset(position: number): string {
  return `${ZERO}_${String(position).padStart(16, '0')}`;
}

const ZERO = '0'.repeat(16);
const OFFSET = /^(\d{16})_(\d{16})$/;

/** The byte position of an offset this server minted, or null. */
export function offsetPosition(v: string): number | null {
  const m = OFFSET.exec(v);
  if (!m) return null;
  const n = Number(m[2]);
  return Number.isSafeInteger(n) ? n : null;
}

/** A request's `offset`: a position, 'now' (the tail), or null when malformed. Absent and `-1` are the start. */
export function parseOffset(v: string | null): number | 'now' | null {
  if (v === null || v === '-1') return 0;
  if (v === 'now') return 'now';
  return offsetPosition(v);
}

/** Cursor intervals (PROTOCOL.md §10.1): 20 s counted from 2024-10-09T00:00:00Z. */
const CURSOR_EPOCH = Date.UTC(2024, 9, 9);
const CURSOR_INTERVAL_MS = 20_000;

/** The cursor for a live answer: the current interval, or past the client's own when it is not behind (jitter 1-3600 s). */
export function nextCursor(client: string | null, now = Date.now()): string {
  const current = Math.floor((now - CURSOR_EPOCH) / CURSOR_INTERVAL_MS);
  const given = client !== null && /^\d{1,15}$/.test(client) ? Number(client) : -1;
  if (given < current) return String(current);
  const jitterSec = 1 + Math.floor(Math.random() * 3600);
  return String(given + Math.max(1, Math.ceil(jitterSec / (CURSOR_INTERVAL_MS / 1000))));
}
