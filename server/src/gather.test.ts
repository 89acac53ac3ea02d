// The primary's combining of its workers' answers: real prom-client registries, fake IPC.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { combineConnections, combineMetrics, GATHER_TIMEOUT_MS, Gatherer, type MetricsJson, type WorkerMessage } from './gather';

async function workerMetrics(published: number, live: number, fds: number, lag: number): Promise<MetricsJson> {
  const registry = new Registry();
  new Counter({ name: 'dps_messages_published_total', help: 'h', registers: [registry] }).inc(published);
  new Gauge({ name: 'dps_connections', help: 'h', labelNames: ['state'], registers: [registry] }).set({ state: 'live' }, live);
  new Gauge({ name: 'dps_recipient_lag', help: 'h', labelNames: ['recipient'], registers: [registry], aggregator: 'max' }).set(
    { recipient: 'r' },
    lag,
  );
  new Gauge({ name: 'process_open_fds', help: 'h', registers: [registry] }).set(fds);
  new Gauge({ name: 'process_max_fds', help: 'h', registers: [registry] }).set(20000);
  new Histogram({ name: 'dps_redis_command_duration_seconds', help: 'h', buckets: [0.01], registers: [registry] }).observe(0.001);
  return registry.getMetricsAsJSON();
}

describe('combineMetrics', () => {
  it('sums what adds up over workers, takes the largest of per-process values, and adds a series per worker', async () => {
    const text = await combineMetrics([
      { worker: 3, metrics: await workerMetrics(5, 2, 40, 7) },
      { worker: 1, metrics: await workerMetrics(3, 1, 30, 7) },
    ]);
    const series = text.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(series).toEqual([
      'dps_messages_published_total 8',
      'dps_connections{state="live"} 3',
      'dps_recipient_lag{recipient="r"} 7',
      'process_open_fds 70',
      'process_max_fds 20000',
      'dps_redis_command_duration_seconds_bucket{le="0.01"} 2',
      'dps_redis_command_duration_seconds_bucket{le="+Inf"} 2',
      'dps_redis_command_duration_seconds_sum 0.002',
      'dps_redis_command_duration_seconds_count 2',
      'dps_worker_connections{worker="1"} 1',
      'dps_worker_connections{worker="3"} 2',
      'dps_worker_open_fds{worker="1"} 30',
      'dps_worker_open_fds{worker="3"} 40',
      'dps_worker_resident_memory_bytes{worker="1"} 0',
      'dps_worker_resident_memory_bytes{worker="3"} 0',
    ]);
  });
});

describe('combineConnections', () => {
  it('adds up the connections of each (recipient, pattern set)', () => {
    expect(
      combineConnections([
        [
          ['a', 1],
          ['b', 2],
        ],
        [['a', 3]],
        [],
      ]),
    ).toEqual([
      ['a', 4],
      ['b', 2],
    ]);
  });
});

describe('Gatherer', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Workers that answer `collect` with these connections (undefined: never answers). */
  function workers(g: Gatherer, answers: Record<number, [string, number][] | undefined>) {
    return new Map(
      Object.entries(answers).map(([id, connections]) => [
        Number(id),
        (m: WorkerMessage) => {
          if (m.dps === 'collect' && connections)
            queueMicrotask(() => g.collected(Number(id), { dps: 'collected', req: m.req, connections }));
        },
      ]),
    );
  }

  it('asks every worker and combines their answers', async () => {
    const g = new Gatherer();
    const answer = await g.gather('connections', workers(g, { 1: [['a', 1]], 2: [['a', 2]] }));
    expect(answer).toEqual({ connections: [['a', 3]] });
  });

  it('waits no longer for a worker that exited, nor for one whose channel is closed', async () => {
    const g = new Gatherer();
    const asked = workers(g, { 1: [['a', 1]], 2: undefined });
    asked.set(3, () => {
      throw new Error('disconnected');
    });
    const pending = g.gather('connections', asked);
    g.gone(2);
    expect(await pending).toEqual({ connections: [['a', 1]] });
  });

  it('fails when a worker has not answered in time', async () => {
    vi.useFakeTimers();
    const g = new Gatherer();
    const pending = g.gather('connections', workers(g, { 1: [['a', 1]], 2: undefined }));
    const failed = expect(pending).rejects.toThrow(`a worker did not answer within ${GATHER_TIMEOUT_MS} ms`);
    await vi.advanceTimersByTimeAsync(GATHER_TIMEOUT_MS);
    await failed;
  });
});
