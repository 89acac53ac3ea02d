// Loads the Lua scripts (`<name>-<numKeys>.lua`, `-n`: the caller passes numkeys first) as ioredis commands `dps<Name>` (EVALSHA, EVAL on NOSCRIPT).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';

const LUA_DIR = join(dirname(fileURLToPath(import.meta.url)), 'lua');

/**
 * Lua text with each `--@include <name>` line replaced by `lua/includes/<name>.lua` (blocks several scripts share),
 * includes of includes too; a block already included once is not included again (Lua locals need no second copy).
 */
function expand(lua: string, included = new Set<string>()): string {
  return lua.replace(/^--@include ([a-z-]+)$/gm, (_, name: string) => {
    if (included.has(name)) return '';
    included.add(name);
    return expand(readFileSync(join(LUA_DIR, 'includes', `${name}.lua`), 'utf8'), included).trimEnd();
  });
}

/** A script's text, includes expanded. */
export function scriptSource(file: string): string {
  return expand(readFileSync(join(LUA_DIR, file), 'utf8'));
}

/** The `dps` Redis Function library (functions/dps.lua), includes expanded: what FUNCTION LOAD takes. */
export function functionLibrary(): string {
  return expand(readFileSync(join(LUA_DIR, '..', 'functions', 'dps.lua'), 'utf8'));
}

export interface ScriptCommands {
  /** numkeys first: the key count depends on the batch */
  dpsPublishmany(...args: (string | number)[]): Promise<[string, number, ...number[]]>;
  dpsHello(...args: (string | number)[]): Promise<[string, number, number, number, number]>;
  /** [position, existed]; [-2, 0]: the recipient does not exist */
  dpsPlace(...args: (string | number)[]): Promise<[number, 0 | 1]>;
  dpsMigrate(...args: (string | number)[]): Promise<0 | 1>;
  /** numkeys first */
  dpsAckmany(...args: (string | number)[]): Promise<number[]>;
  dpsRead(...args: (string | number)[]): Promise<[number, ...string[]]>;
  /** the same reply with frames and scores as Buffers (ioredis defines `<command>Buffer` for every script) */
  dpsReadBuffer(...args: (string | number)[]): Promise<[number, ...Buffer[]]>;
  /** 'all' | 'changed', then flat: set key, floor (null: no longer used), … */
  dpsFloors(...args: (string | number)[]): Promise<(string | null)[]>;
  /** 2: the recipient is gone, 1: one set of it, 0: nothing */
  dpsForget(...args: (string | number)[]): Promise<0 | 1 | 2>;
  dpsTrim(...args: (string | number)[]): Promise<[number, number]>;
  dpsRecover(...args: (string | number)[]): Promise<[string, RecoverOutcome, string, number]>;
  dpsClock(...args: (string | number)[]): Promise<[string, string]>;
}

export type RecoverOutcome = 'same' | 'new' | 'restarted' | 'kept' | 'reset';

export type ScriptedRedis = Redis & ScriptCommands;

export function defineScripts(redis: Redis): ScriptedRedis {
  for (const file of readdirSync(LUA_DIR)) {
    const m = /^([a-z]+)-(\d+|n)\.lua$/.exec(file);
    if (!m) continue;
    const [, name, keys] = m as unknown as [string, string, string];
    // Prefixed so that no script shadows a built-in command (ioredis has `publish`).
    const command = `dps${name[0]?.toUpperCase()}${name.slice(1)}`;
    const lua = scriptSource(file);
    if (!(command in redis)) redis.defineCommand(command, keys === 'n' ? { lua } : { numberOfKeys: Number(keys), lua });
  }
  return redis as ScriptedRedis;
}
