// What every process of `serve` does the same way: the managed redis-server, an instance on the port, the lines it prints.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from './config';
import { type DurablePubsub, durablePubsub, instanceSettings, type Peers } from './durable-pubsub';
import type { Logger } from './log';
import { type ManagedRedis, RedisBinaryMissing, startRedis } from './redis/managed';

const DEMO_DIST = join(dirname(fileURLToPath(import.meta.url)), '../../demo-web/dist');

/** With REDIS_URL unset (and no Cluster or Sentinels), a redis-server of this machine; exits 1 when there is none to run. */
export async function ownRedis(config: Config, log: Logger): Promise<ManagedRedis | undefined> {
  if (config.redisUrl) return undefined;
  let managed: ManagedRedis;
  try {
    managed = await startRedis({ dataDir: config.dataDir, appendfsync: config.redisFsync });
  } catch (err) {
    if (err instanceof RedisBinaryMissing) {
      process.stderr.write(`durable-pubsub: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  log.info('started a managed redis-server', { url: managed.url, dataDir: config.dataDir, appendfsync: config.redisFsync });
  return managed;
}

/** One instance listening on the configured port (under node:cluster every worker listens on the same one). */
export async function startServing(
  config: Config,
  redisUrl: string,
  log: Logger,
  extra: { ownsRedis?: boolean; peers?: Peers } = {},
): Promise<{ dps: DurablePubsub; port: number }> {
  // The CLI is a user of the embedding API: an instance, listening on a port of its own.
  const dps = await durablePubsub({
    ...instanceSettings(config),
    redisUrl,
    log,
    staticDir: config.demo ? DEMO_DIST : undefined,
    ...extra,
  });
  const { port } = await dps.listen(config.port, config.host);
  return { dps, port };
}

/** The lines whoever started the server looks for: where it listens, and the dashboard's URL. */
export function announce(config: Config, log: Logger, port: number, fields: Record<string, unknown> = {}): void {
  const shown = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const url = `http://${shown}:${port}`;
  log.info('durable-pubsub is listening', { url, ws: `ws://${shown}:${port}${config.wsPath}`, namespace: config.namespace, ...fields });
  if (config.demo) process.stdout.write(`\n  Demo dashboard: ${url}/\n\n`);
}

/** Stops once, on the first SIGINT or SIGTERM (Ctrl-C in a terminal signals every process of the group), then exits 0. */
export function onStopSignal(stop: (signal: string) => Promise<void>): void {
  let stopping = false;
  const handle = (signal: string) => {
    if (stopping) return;
    stopping = true;
    void stop(signal).then(() => process.exit(0));
  };
  process.on('SIGINT', () => handle('SIGINT'));
  process.on('SIGTERM', () => handle('SIGTERM'));
}
