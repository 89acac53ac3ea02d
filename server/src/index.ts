// Public entry of the server package: start a server in-process (tests, embedding).
export { type App, type AppOptions, startApp } from './app';
export { type Config, loadConfig } from './config';
export { createLogger, type Logger, silentLogger } from './log';
export { keysFor } from './redis/keys';
export { freePort, type ManagedRedis, startRedis } from './redis/managed';
export { Store } from './store';
