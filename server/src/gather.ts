// How serve's primary answers for all its workers: it asks each for its metrics or connections, and combines the answers.
import { AggregatorRegistry, type Registry } from 'prom-client';

/** What `registry.getMetricsAsJSON()` gives: one process's metrics, as values. */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;
export type Gatherable = 'metrics' | 'connections';

/** The messages between the primary and its workers, over node:cluster's IPC channel (`dps` names the kind). */
export type WorkerMessage =
  /** worker → primary: its server listens on `port` */
  | { dps: 'listening'; port: number }
  /** worker → primary: answer for the whole machine; the primary replies `gathered` with the same `req` */
  | { dps: 'gather'; what: Gatherable; req: number }
  /** primary → worker: send your own, as `collected` with the same `req` */
  | { dps: 'collect'; what: Gatherable; req: number }
  | { dps: 'collected'; req: number; metrics?: MetricsJson; connections?: [string, number][] }
  | { dps: 'gathered'; req: number; metrics?: string; connections?: [string, number][]; error?: string }
  /** primary → worker: run the demo feed (DPS_DEMO), which runs once per machine */
  | { dps: 'feed' };

export function isWorkerMessage(m: unknown): m is WorkerMessage {
  return typeof m === 'object' && m !== null && typeof (m as { dps?: unknown }).dps === 'string';
}

/** how long the workers have to answer a gathering; one that has not by then fails the request (503) */
export const GATHER_TIMEOUT_MS = 5000;

/** A process-wide value that is the same in every worker: the largest, not the sum. */
const NOT_SUMMED: Record<string, 'max'> = { process_max_fds: 'max' };

/** Series per worker (label `worker`), read off each worker's own metrics: what a sum would hide. */
const PER_WORKER: [name: string, help: string, read: (m: MetricsJson) => number][] = [
  ['dps_worker_connections', 'Open connections on each worker process, in any state.', (m) => total(m, 'dps_connections')],
  [
    'dps_worker_open_fds',
    'Open file descriptors of each worker process; each has its own limit (process_max_fds).',
    (m) => total(m, 'process_open_fds'),
  ],
  ['dps_worker_resident_memory_bytes', 'Resident memory of each worker process.', (m) => total(m, 'process_resident_memory_bytes')],
];

function total(metrics: MetricsJson, name: string): number {
  return metrics.find((m) => m.name === name)?.values.reduce((a, v) => a + v.value, 0) ?? 0;
}

/**
 * Every worker's metrics as one Prometheus text: counters, gauges and histograms summed (the machine is the node),
 * prom-client's own choice where a metric names one (event loop lag: the average), plus `dps_worker_*{worker}`.
 */
export async function combineMetrics(answers: { worker: number; metrics: MetricsJson }[]): Promise<string> {
  answers = answers.toSorted((a, b) => a.worker - b.worker);
  const perWorker = answers.map(({ worker, metrics }) =>
    PER_WORKER.map(([name, help, read]) => ({
      name,
      help,
      type: 'gauge',
      aggregator: 'sum',
      values: [{ labels: { worker: String(worker) }, value: read(metrics) }],
    })),
  );
  const own = answers.map(({ metrics }) => metrics.map((m) => (m.name in NOT_SUMMED ? { ...m, aggregator: NOT_SUMMED[m.name] } : m)));
  return AggregatorRegistry.aggregate([...own, ...perWorker]).metrics();
}

/** Open connections per (recipient, pattern set), summed over the workers. */
export function combineConnections(answers: [string, number][][]): [string, number][] {
  const sum = new Map<string, number>();
  for (const list of answers) for (const [k, n] of list) sum.set(k, (sum.get(k) ?? 0) + n);
  return [...sum];
}

type Collected = { worker: number; m: Extract<WorkerMessage, { dps: 'collected' }> };
export type Gathered = Omit<Extract<WorkerMessage, { dps: 'gathered' }>, 'dps' | 'req'>;

interface Gathering {
  waiting: Set<number>;
  answers: Collected[];
  timer: NodeJS.Timeout;
  resolve(answers: Collected[]): void;
}

/** The primary's open gatherings: each asks every worker once, and completes when all answered (or are gone). */
export class Gatherer {
  #next = 0;
  readonly #open = new Map<number, Gathering>();

  /** Asks every one of `workers` (id → how to send to it) for its own; resolves with the machine's. */
  async gather(what: Gatherable, workers: Map<number, (m: WorkerMessage) => void>): Promise<Gathered> {
    const req = this.#next++;
    const answers = await new Promise<Collected[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#open.delete(req);
        reject(new Error(`a worker did not answer within ${GATHER_TIMEOUT_MS} ms`));
      }, GATHER_TIMEOUT_MS);
      this.#open.set(req, { waiting: new Set(workers.keys()), answers: [], timer, resolve });
      for (const [id, send] of workers) {
        try {
          send({ dps: 'collect', what, req });
        } catch {
          this.gone(id); // its channel closed: it is on its way out, and takes its connections with it
        }
      }
      this.#settle(req);
    });
    if (what === 'connections') return { connections: combineConnections(answers.map((a) => a.m.connections ?? [])) };
    return { metrics: await combineMetrics(answers.map((a) => ({ worker: a.worker, metrics: a.m.metrics ?? [] }))) };
  }

  /** A worker's answer. */
  collected(worker: number, m: Extract<WorkerMessage, { dps: 'collected' }>): void {
    const g = this.#open.get(m.req);
    if (!g?.waiting.delete(worker)) return;
    g.answers.push({ worker, m });
    this.#settle(m.req);
  }

  /** A worker exited: no gathering waits for it any longer. */
  gone(worker: number): void {
    for (const [req, g] of this.#open) if (g.waiting.delete(worker)) this.#settle(req);
  }

  #settle(req: number): void {
    const g = this.#open.get(req);
    if (!g || g.waiting.size) return;
    clearTimeout(g.timer);
    this.#open.delete(req);
    g.resolve(g.answers);
  }
}
