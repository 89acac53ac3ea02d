// Runs the server in the foreground: config from the environment, managed Redis when REDIS_URL is unset (`pnpm run server`, `durable-pubsub serve`).
import cluster from 'node:cluster';
import { type Config, ConfigError, loadConfig } from './config';
import { runDemoFeed } from './demo-feed';
import { createLogger, type Level } from './log';
import { runPrimary } from './primary';
import { announce, onStopSignal, ownRedis, startServing } from './serving';
import { runWorker } from './worker';

/** DPS_WORKERS (or `serve --workers`) above 1: a primary and that many worker processes on one port; else one process. */
export async function serve(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const level = (env.DPS_LOG_LEVEL as Level | undefined) ?? 'info';
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`durable-pubsub: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (cluster.isWorker) return runWorker(config, level);
  const log = createLogger(level);
  if (config.workers > 1) return runPrimary(config, log);

  const managed = await ownRedis(config, log);
  const { dps, port } = await startServing(config, managed?.url ?? (config.redisUrl as string), log, { ownsRedis: managed !== undefined });
  const stopFeed = config.demo ? await runDemoFeed(dps, config, log) : async () => {};
  announce(config, log, port);

  onStopSignal(async (signal) => {
    log.info('stopping', { signal });
    await stopFeed();
    await dps.close();
    await managed?.stop();
  });
}
