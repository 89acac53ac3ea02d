// A worker process of `serve --workers`: one instance on the port the workers share, stopped by a signal, linked to the primary.
import cluster from 'node:cluster';
import type { Registry } from 'prom-client';
import type { Config } from './config';
import { runDemoFeed } from './demo-feed';
import type { Peers } from './durable-pubsub';
import { DpsError } from './errors';
import { type Gatherable, type Gathered, isWorkerMessage, type WorkerMessage } from './gather';
import { createLogger, type Level } from './log';
import { onStopSignal, startServing } from './serving';

const send = (m: WorkerMessage) => process.send?.(m);

/** This worker's side of the machine-wide answers: it gives the primary its own metrics and connections, and asks for all. */
class PrimaryLink implements Peers {
  #local: { registry: Registry; connections(): Map<string, number> } | undefined;
  #next = 0;
  readonly #asked = new Map<number, (answer: Gathered) => void>();
  onFeed = () => {};

  constructor() {
    process.on('message', (m) => {
      if (isWorkerMessage(m)) void this.#receive(m);
    });
  }

  attach(local: { registry: Registry; connections(): Map<string, number> }): void {
    this.#local = local;
  }

  async metrics(): Promise<string> {
    return (await this.#ask('metrics')).metrics ?? '';
  }

  async connections(): Promise<Map<string, number>> {
    return new Map((await this.#ask('connections')).connections);
  }

  async #ask(what: Gatherable): Promise<Gathered> {
    const req = this.#next++;
    // The primary always answers (it times out workers that do not); if it is gone, so is this process.
    const answer = await new Promise<Gathered>((resolve) => {
      this.#asked.set(req, resolve);
      send({ dps: 'gather', what, req });
    });
    if (answer.error) throw new DpsError('unavailable', `could not gather from every worker: ${answer.error}`);
    return answer;
  }

  async #receive(m: WorkerMessage): Promise<void> {
    if (m.dps === 'collect') {
      const local = this.#local;
      // Not serving yet: nothing to count.
      if (m.what === 'connections') send({ dps: 'collected', req: m.req, connections: local ? [...local.connections()] : [] });
      else send({ dps: 'collected', req: m.req, metrics: local ? await local.registry.getMetricsAsJSON() : [] });
    } else if (m.dps === 'gathered') {
      this.#asked.get(m.req)?.(m);
      this.#asked.delete(m.req);
    } else if (m.dps === 'feed') this.onFeed();
  }
}

export async function runWorker(config: Config, level: Level): Promise<void> {
  const log = createLogger(level, undefined, { worker: cluster.worker?.id, pid: process.pid });
  const link = new PrimaryLink();
  // REDIS_URL is set: the primary owns the managed Redis (and marks the log clean once every worker has stopped).
  const { dps, port } = await startServing(config, config.redisUrl as string, log, { peers: link });
  let stopFeed = async () => {};
  link.onFeed = async () => {
    log.info('running the demo feed');
    await stopFeed();
    stopFeed = await runDemoFeed(dps, config, log);
  };
  log.info('worker is serving', { port });
  send({ dps: 'listening', port });

  // The primary sends SIGTERM to each worker.
  onStopSignal(async (signal) => {
    log.info('worker stopping', { signal });
    await stopFeed();
    await dps.close();
  });
}
