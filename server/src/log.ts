// Structured logs with pino: JSON lines, or pretty lines in a terminal. Tokens are redacted; message contents are never logged.
import pino from 'pino';
import pretty from 'pino-pretty';

export type Level = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const REDACT = ['token', 'authorization', '*.token', '*.authorization', 'headers.authorization'];

/** `fields` go on every line (a worker process's id). */
export function createLogger(level: Level = 'info', isTerminal = process.stdout.isTTY === true, fields?: Record<string, unknown>): Logger {
  const p = pino(
    { level, base: fields ?? null, redact: { paths: REDACT, censor: '[redacted]' } },
    isTerminal
      ? pretty({ colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', sync: true })
      : pino.destination({ sync: true }),
  );
  const at =
    (lvl: 'debug' | 'info' | 'warn' | 'error') =>
    (msg: string, fields?: Record<string, unknown>): void => {
      if (fields) p[lvl](fields, msg);
      else p[lvl](msg);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
