// Loads the Lua scripts (`<name>-<numKeys>.lua`, `-n`: the caller passes numkeys first) as ioredis commands `dps<Name>`; only commands.ts calls them.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';

// Beside the module that holds this code: src/redis/lua in the workspace; dist/lua in the built package, whose
// bundle puts this code in a chunk at the top of dist/ (server/tsdown.config.ts copies lua/ and functions/ there).
export const LUA_DIR = join(dirname(fileURLToPath(import.meta.url)), 'lua');

/** One script file: its command name and how many keys it takes ('n': as many as the caller says). */
export interface ScriptFile {
  file: string;
  name: string;
  numKeys: number | 'n';
}

/** The scripts in lua/, by their file names. */
export function scriptFiles(): ScriptFile[] {
  return readdirSync(LUA_DIR).flatMap((file) => {
    const m = /^([a-z]+)-(\d+|n)\.lua$/.exec(file);
    if (!m) return [];
    const [, name, keys] = m as unknown as [string, string, string];
    return [{ file, name, numKeys: keys === 'n' ? 'n' : Number(keys) }];
  });
}

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

/** A script's ioredis command: prefixed so that no script shadows a built-in command (ioredis has `publish`). */
export function commandOf(name: string): string {
  return `dps${name[0]?.toUpperCase()}${name.slice(1)}`;
}

type Args = (string | number)[];

/** The raw commands, positional as the scripts' headers list them: commands.ts gives each a typed caller. */
export interface ScriptCommands {
  /** numkeys first: the key count depends on the batch */
  dpsPublishmany(...args: Args): Promise<[string, number, ...number[]]>;
  dpsHello(...args: Args): Promise<[string, number, number, 0 | 1, number]>;
  /** [position, existed]; [ScriptCode.forgotten, 0]: the recipient does not exist */
  dpsPlace(...args: Args): Promise<[number, 0 | 1]>;
  dpsMigrate(...args: Args): Promise<0 | 1>;
  /** numkeys first */
  dpsAckmany(...args: Args): Promise<number[]>;
  /** the reply with frames and scores as Buffers (ioredis defines `<command>Buffer` for every script) */
  dpsReadBuffer(...args: Args): Promise<[number, ...Buffer[]]>;
  /** 'all' | 'changed', then flat: set key, floor (null: no longer used), … */
  dpsFloors(...args: Args): Promise<(string | null)[]>;
  /** 2: the recipient is gone, 1: one set of it, 0: nothing */
  dpsForget(...args: Args): Promise<0 | 1 | 2>;
  dpsTrim(...args: Args): Promise<[number, number]>;
  dpsRecover(...args: Args): Promise<[string, string, string, number]>;
  dpsClock(...args: Args): Promise<[string, string]>;
  dpsPubsubmode(...args: Args): Promise<string>;
  /** Durable Streams (streams/storage.ts): [status, tail, closed, ct] */
  dpsDscreate(...args: (string | number | Buffer)[]): Promise<[string, number, string, string]>;
  /** [status, tail, closed, a, b] */
  dpsDsappend(...args: (string | number | Buffer)[]): Promise<[string, number, string, number, number, string?, number?]>;
  /** [status, ct, tail, closed, id, ttl, expAt, exp, from, ...entries], all as Buffers */
  dpsDsreadBuffer(...args: Args): Promise<Buffer[]>;
  dpsDsdelete(...args: Args): Promise<string>;
}

export type ScriptedRedis = Redis & ScriptCommands;

/** Defines every script on the connection (once: a second Store on it finds them there). */
export function defineScripts(redis: Redis): ScriptedRedis {
  for (const { file, name, numKeys } of scriptFiles()) {
    const command = commandOf(name);
    const lua = scriptSource(file);
    if (!(command in redis)) redis.defineCommand(command, numKeys === 'n' ? { lua } : { numberOfKeys: numKeys, lua });
  }
  return redis as ScriptedRedis;
}
