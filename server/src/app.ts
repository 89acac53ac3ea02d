// A server on a port of its own (the tests' and `serve`'s form): durablePubsub() listening where the config says.
import type { Server } from 'node:http';
import type { Bridge } from './bridge';
import type { Config } from './config';
import type { Connection } from './connection';
import { durablePubsub, instanceSettings } from './durable-pubsub';
import type { Janitor } from './janitor';
import type { Logger } from './log';
import type { Store } from './store';

export interface App {
  server: Server;
  store: Store;
  bridge: Bridge;
  janitor: Janitor;
  sessions: ReadonlySet<Connection>;
  /** the bound port (useful with PORT=0) */
  port: number;
  url: string;
  stop(): Promise<void>;
}

export interface AppOptions {
  redisUrl: string;
  log?: Logger;
  /** a built web app served at / (the demo dashboard) */
  staticDir?: string;
  /** this process owns the Redis server and stops it right after: mark the log as cleanly flushed */
  ownsRedis?: boolean;
}

export async function startApp(config: Config, opts: AppOptions): Promise<App> {
  const dps = await durablePubsub({ ...instanceSettings(config), ...opts });
  try {
    const { server, port, url } = await dps.listen(config.port, config.host);
    const { store, bridge, janitor, sessions } = dps;
    return { server, store, bridge, janitor, sessions, port, url, stop: dps.close };
  } catch (err) {
    await dps.close();
    throw err;
  }
}
