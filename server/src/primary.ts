// The primary of `serve --workers`: owns what is per machine (the managed Redis, signals, the demo feed's place) and keeps N workers running.
import cluster, { type Worker } from 'node:cluster';
import type { Config } from './config';
import { Gatherer, isWorkerMessage, type WorkerMessage } from './gather';
import type { Logger } from './log';
import { commandConnection, connect } from './redis/connect';
import type { ManagedRedis } from './redis/managed';
import { announce, ownRedis } from './serving';
import { Store } from './store';

/** how long stopping workers have to close (each waits up to 3 s for acks) before they are killed */
const STOP_WAIT_MS = 10_000;
/** a worker that dies before it serves is started again after this, doubling up to the maximum */
const RESTART_DELAY = { first: 250, max: 10_000 };

export async function runPrimary(config: Config, log: Logger): Promise<void> {
  const managed = await ownRedis(config, log);
  // Workers connect to the managed Redis rather than start their own.
  const env = managed ? { REDIS_URL: managed.url } : {};
  const workers = new Map<number, Worker>();
  const serving = new Set<number>();
  const gatherer = new Gatherer();
  let feedOn: number | undefined;
  let announced = false;
  let failedStarts = 0;
  let stopping = false;
  /** replacements waiting for their delay */
  const restarts = new Set<NodeJS.Timeout>();

  const fork = () => {
    if (stopping) return;
    const w = cluster.fork(env);
    // A message to a worker whose channel just closed fails with an 'error' event: its 'exit' follows, and handles it.
    w.on('error', (err) => log.debug('worker channel error', { worker: w.id, err: String(err) }));
    workers.set(w.id, w);
  };
  const sendTo = (w: Worker) => (m: WorkerMessage) => {
    if (w.isConnected()) w.send(m);
    else throw new Error('disconnected');
  };
  /** The demo feed runs in one worker; when that one goes, in another that serves. */
  const placeFeed = () => {
    if (!config.demo || stopping || (feedOn !== undefined && serving.has(feedOn))) return;
    feedOn = [...serving].find((id) => workers.get(id)?.isConnected());
    if (feedOn !== undefined) workers.get(feedOn)?.send({ dps: 'feed' } satisfies WorkerMessage);
  };

  cluster.on('message', (w, m) => {
    if (!isWorkerMessage(m)) return;
    if (m.dps === 'listening') {
      serving.add(w.id);
      failedStarts = 0;
      placeFeed();
      if (!announced && serving.size >= config.workers) {
        announced = true;
        announce(config, log, m.port, { workers: config.workers });
      }
    } else if (m.dps === 'gather') {
      // Those that serve: a worker still starting has no connections yet, and nothing to answer with.
      const asked = new Map<number, (m: WorkerMessage) => void>();
      for (const id of serving) {
        const peer = workers.get(id);
        if (peer) asked.set(id, sendTo(peer));
      }
      gatherer.gather(m.what, asked).then(
        (answer) => w.isConnected() && w.send({ dps: 'gathered', req: m.req, ...answer } satisfies WorkerMessage),
        (err: Error) => w.isConnected() && w.send({ dps: 'gathered', req: m.req, error: err.message } satisfies WorkerMessage),
      );
    } else if (m.dps === 'collected') gatherer.collected(w.id, m);
  });

  cluster.on('exit', (w, code, signal) => {
    const wasServing = serving.delete(w.id);
    workers.delete(w.id);
    gatherer.gone(w.id);
    if (stopping) {
      if (!workers.size) void finish();
      return;
    }
    const pid = w.process.pid;
    if (!announced && !wasServing) {
      // As one process would: a server that cannot start exits (its worker printed why).
      log.error('a worker could not start; stopping', { worker: w.id, pid, code, signal });
      return void stop(undefined, 1);
    }
    const delay = wasServing ? 0 : Math.min(RESTART_DELAY.max, RESTART_DELAY.first * 2 ** failedStarts++);
    log.warn('a worker exited; starting another', { worker: w.id, pid, code, signal, delayMs: delay });
    placeFeed();
    const timer = setTimeout(() => {
      restarts.delete(timer);
      fork();
    }, delay);
    restarts.add(timer);
  });

  let exitCode = 0;
  /** Graceful: each worker stores the acks it received and closes its sockets with 1001, then Redis stops. */
  const stop = (signal: string | undefined, code = 0) => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    for (const timer of restarts) clearTimeout(timer);
    log.info('stopping', { signal, workers: workers.size });
    if (!workers.size) return void finish(exitCode);
    for (const w of workers.values()) w.process.kill('SIGTERM');
    setTimeout(() => {
      for (const w of workers.values()) w.process.kill('SIGKILL');
    }, STOP_WAIT_MS).unref();
  };
  const finish = async (code = exitCode) => {
    if (managed) {
      await markClean(managed, config).catch(() => {});
      await managed.stop();
    }
    process.exit(code);
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  log.info('starting workers', { workers: config.workers });
  for (let i = 0; i < config.workers; i++) fork();
}

/** No worker writes any more and the managed Redis stops next, flushing its log: its next start keeps the epoch. */
async function markClean(managed: ManagedRedis, config: Config): Promise<void> {
  const redis = commandConnection(managed.url, config.redisTimeoutMs);
  try {
    await connect(redis, config.redisTimeoutMs);
    await new Store(redis, config).markClean();
  } finally {
    redis.disconnect();
  }
}
