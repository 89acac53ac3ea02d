// Prometheus metrics (prom-client): hot-path counts are plain numbers read at scrape time.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Counted on the hot path without touching prom-client. */
export interface Stats {
  published: number;
  deliveredLive: number;
  replayed: number;
  acks: number;
  gaps: number;
  slowFallbacks: number;
  slowClosed: number;
  /** connections terminated by the heartbeat (their peer vanished without a close) */
  deadTerminated: number;
  /** live frames that were not one valid JSON message, dropped (and reported to their readers as a gap) */
  invalidFrames: number;
  /** Redis connections found silent (no answer within DPS_REDIS_TIMEOUT) and replaced */
  redisSilent: number;
  /** Redis command timing, observed by the store */
  observeRedis(op: string, seconds: number): void;
}

export interface MetricsSources {
  stats: Stats;
  connectionsByState(): Record<string, number>;
  /** the N recipients furthest behind, or [] when the metric is off */
  topLag(): Promise<{ name: string; lag: number }[]>;
  /** the outbox relay's counts and whether it holds the lock, when this node runs one */
  outbox?(): { relaying: boolean; stats: Record<'published' | 'duplicates' | 'rejected' | 'failures', number> } | null;
}

export function createStats(): Stats & { histogram?: Histogram<'op'> } {
  const stats: Stats & { histogram?: Histogram<'op'> } = {
    published: 0,
    deliveredLive: 0,
    replayed: 0,
    acks: 0,
    gaps: 0,
    slowFallbacks: 0,
    slowClosed: 0,
    deadTerminated: 0,
    invalidFrames: 0,
    redisSilent: 0,
    observeRedis(op, seconds) {
      stats.histogram?.observe({ op }, seconds);
    },
  };
  return stats;
}

function counter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

export function createMetrics(src: MetricsSources & { stats: ReturnType<typeof createStats> }): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  const s = src.stats;
  counter(
    registry,
    'dps_messages_published_total',
    'Messages this node stored (HTTP, WebSocket, demo feed); repeated idempotency keys excluded.',
    () => s.published,
  );
  counter(registry, 'dps_messages_delivered_total', 'Live messages written to sockets.', () => s.deliveredLive);
  counter(registry, 'dps_messages_replayed_total', 'Messages written to sockets from the store (catch-up).', () => s.replayed);
  counter(registry, 'dps_acks_total', 'Ack frames received.', () => s.acks);
  counter(registry, 'dps_gaps_total', 'Gap frames sent (retention removed messages before they were acked).', () => s.gaps);
  counter(
    registry,
    'dps_slow_consumer_fallbacks_total',
    'Times a live socket fell back to being served from the store.',
    () => s.slowFallbacks,
  );
  counter(
    registry,
    'dps_slow_consumer_closed_total',
    'Sockets closed with 4508 after making no progress for DPS_SLOW_CONSUMER_TIMEOUT.',
    () => s.slowClosed,
  );
  counter(
    registry,
    'dps_connections_dead_total',
    'Connections terminated because they answered no ping for DPS_HEARTBEAT_INTERVAL (the peer vanished without a close).',
    () => s.deadTerminated,
  );
  counter(
    registry,
    'dps_invalid_frames_total',
    'Live frames that were not one valid JSON message (written to Redis around the server), reported to readers as a gap.',
    () => s.invalidFrames,
  );
  counter(
    registry,
    'dps_redis_silent_total',
    'Redis connections that stopped answering for DPS_REDIS_TIMEOUT without closing, and were replaced.',
    () => s.redisSilent,
  );
  new Gauge({
    name: 'dps_connections',
    help: 'WebSocket connections on this node, by state.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [state, n] of Object.entries(src.connectionsByState())) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'dps_recipient_lag',
    help: 'Messages after the acked position on matching channels, for the recipients furthest behind (DPS_METRICS_LAG_TOP).',
    labelNames: ['recipient'],
    registers: [registry],
    // Every worker process reads the same lags from Redis: across them, one value, not a sum.
    aggregator: 'max',
    async collect() {
      this.reset();
      for (const r of await src.topLag().catch(() => [])) this.set({ recipient: r.name }, r.lag);
    },
  });
  new Counter({
    name: 'dps_outbox_rows_total',
    help: 'Outbox rows this node relayed, by outcome: published, duplicate (stored before under its key), rejected (can never be published; deleted).',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      this.reset();
      const o = src.outbox?.();
      if (!o) return;
      this.inc({ outcome: 'published' }, o.stats.published);
      this.inc({ outcome: 'duplicate' }, o.stats.duplicates);
      this.inc({ outcome: 'rejected' }, o.stats.rejected);
    },
  });
  new Gauge({
    name: 'dps_outbox_relaying',
    help: "1 while this node holds the outbox relay's lock and relays, else 0.",
    registers: [registry],
    collect() {
      this.set(src.outbox?.()?.relaying ? 1 : 0);
    },
  });
  counter(
    registry,
    'dps_outbox_failures_total',
    'Outbox batches or PostgreSQL sessions that failed (Redis or PostgreSQL unavailable); retried.',
    () => src.outbox?.()?.stats.failures ?? 0,
  );
  s.histogram = new Histogram({
    name: 'dps_redis_command_duration_seconds',
    help: 'Latency of the store’s Redis calls, by operation.',
    labelNames: ['op'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  return registry;
}
