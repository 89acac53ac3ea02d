// The periodic work over a node's open connections: the heartbeat, the SSE keep-alive, the touch of positions in use.
import type { Config } from './config';
import type { Connection } from './connection';
import { subMember } from './redis/keys';
import type { Store } from './store';
import { sweep } from './sweep';

/** how often each connected (recipient, pattern set) is marked as seen (a quarter of DPS_RECIPIENT_TTL if shorter) */
const TOUCH_EVERY_MS = 30_000;

/** Starts the timers; returns a function that stops them. */
export function startUpkeep(sessions: Set<Connection>, config: Config, store: Store): () => void {
  // Dead connections (their peer vanished without a close) are gone within two intervals. One timer for all, each
  // connection visited once per interval, a slice of them at a time (sweep.ts).
  const stopHeartbeat = sweep(sessions, config.heartbeatIntervalMs, (s) => s.heartbeat());
  // An idle SSE stream gets a comment now and then, so proxies do not close it.
  const keepAlive = setInterval(() => {
    for (const s of sessions) s.keepAlive();
  }, config.sseKeepAliveMs);
  // The last-seen time of every (recipient, pattern set) with a connection here, so that no node forgets it: each once
  // per period, a slice at a time. One ZADD of all of them at once allocated ~20 MB per 14,000 connections every 30 s:
  // V8 grew its young generation again each time and returned the memory of a connect storm late.
  let touched: string[] = [];
  const stopTouch = sweep(
    sessions,
    Math.min(TOUCH_EVERY_MS, (config.recipientTtlSec * 1000) / 4),
    (s) => {
      if (s.recipient && !s.closed) touched.push(subMember(s.setKey, s.recipient));
    },
    () => {
      if (touched.length) store.subscriptions.touch(touched).catch(() => {});
      touched = [];
    },
  );
  return () => {
    stopTouch();
    stopHeartbeat();
    clearInterval(keepAlive);
  };
}
