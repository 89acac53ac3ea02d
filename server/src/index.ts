// Public entry of the server package: durablePubsub() to embed it in an app; startApp and the parts for tools and tests.

export { type App, type AppOptions, startApp } from './app';
export { type Config, loadConfig } from './config';
export { type DurablePubsub, type DurablePubsubOptions, durablePubsub, type PublishOptions } from './durable-pubsub';
export { createLogger, type Logger, silentLogger } from './log';
export { OutboxRelay, type RelayState, type RelayStats } from './outbox';
export { outboxDdl } from './outbox-sql';
export { keysFor } from './redis/keys';
export { freePort, type ManagedRedis, startRedis } from './redis/managed';
export { Store } from './store';
