// Runs the server in the foreground: config from the environment, managed Redis when REDIS_URL is unset (`pnpm run server`, `durable-pubsub serve`).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from './config';
import { startDemoFeed } from './demo-feed';
import { durablePubsub, instanceSettings } from './durable-pubsub';
import { createLogger } from './log';
import { type ManagedRedis, RedisBinaryMissing, startRedis } from './redis/managed';

const DEMO_DIST = join(dirname(fileURLToPath(import.meta.url)), '../../demo-web/dist');

export async function serve(): Promise<void> {
  const log = createLogger((process.env.DPS_LOG_LEVEL as 'info' | undefined) ?? 'info');
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`durable-pubsub: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  let managed: ManagedRedis | undefined;
  let redisUrl = config.redisUrl;
  if (!redisUrl) {
    try {
      managed = await startRedis({ dataDir: config.dataDir, appendfsync: config.redisFsync });
    } catch (err) {
      if (err instanceof RedisBinaryMissing) {
        process.stderr.write(`durable-pubsub: ${err.message}\n`);
        process.exit(1);
      }
      throw err;
    }
    redisUrl = managed.url;
    log.info('started a managed redis-server', { url: redisUrl, dataDir: config.dataDir, appendfsync: config.redisFsync });
  }
  // The CLI is a user of the embedding API: an instance, listening on a port of its own.
  const dps = await durablePubsub({
    ...instanceSettings(config),
    redisUrl,
    log,
    staticDir: config.demo ? DEMO_DIST : undefined,
    ownsRedis: managed !== undefined,
  });
  const { port } = await dps.listen(config.port, config.host);
  const stopFeed = config.demo ? startDemoFeed(dps) : () => {};
  const shown = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const url = `http://${shown}:${port}`;
  log.info('durable-pubsub is listening', { url, ws: `ws://${shown}:${port}${config.wsPath}`, namespace: config.namespace });
  if (config.demo) process.stdout.write(`\n  Demo dashboard: ${url}/\n\n`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    stopFeed();
    await dps.close();
    await managed?.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}
