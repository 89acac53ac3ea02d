// A throwaway PostgreSQL cluster for tests: initdb into a temp dir, postgres on a free port of 127.0.0.1, killable.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@durable-pubsub/server';
import pg from 'pg';

export interface TestPostgres {
  url: string;
  port: number;
  dir: string;
  child: ChildProcess;
  /** a client of its own (connected); closed by cleanup */
  sql: pg.Client;
  /** an immediate shutdown (SIGQUIT: the backends are killed at once, no checkpoint; the next start recovers, as after a crash) */
  kill(): Promise<void>;
  /** a fast shutdown (SIGINT) */
  stop(): Promise<void>;
  /** starts it again on the same port and data dir (after kill or stop) */
  start(): Promise<void>;
  cleanup(): Promise<void>;
}

/** Where initdb and postgres are: PATH first, else Debian's /usr/lib/postgresql/<version>/bin (the newest). */
export function postgresBin(name: 'initdb' | 'postgres'): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, name))) return join(dir, name);
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', name)))
    .sort((a, b) => Number(b) - Number(a));
  const newest = versions[0];
  return newest === undefined ? undefined : join(root, newest, 'bin', name);
}

/** initdb and postgres refuse to run as root: then they run as `nobody`, owning the temp dir. */
function asUser(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', cmd, ...args]] : [cmd, args];
}

async function ready(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

export async function startTestPostgres(): Promise<TestPostgres> {
  const initdb = postgresBin('initdb');
  const postgres = postgresBin('postgres');
  if (!initdb || !postgres) throw new Error('PostgreSQL is not installed (apt-get install -y postgresql): initdb and postgres not found');
  const dir = mkdtempSync(join(tmpdir(), 'dps-pg-'));
  if (process.getuid?.() === 0) {
    const nobody = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
    chownSync(dir, nobody, -1);
  }
  chmodSync(dir, 0o700);
  const data = join(dir, 'data');
  const [c, a] = asUser(initdb, ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  execFileSync(c, a, { stdio: ['ignore', 'ignore', 'pipe'] });
  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const t = {} as TestPostgres;
  const onExit = () => t.child?.kill('SIGKILL');
  const start = async () => {
    // fsync off: a killed postmaster loses nothing (the kernel still has its writes); only a machine crash would.
    const [cmd, args] = asUser(postgres, [
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=50',
      '-c',
      'shared_buffers=16MB',
    ]);
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr = (stderr + d).slice(-4000);
    });
    t.child = child;
    process.once('exit', onExit);
    for (let i = 0; !(await ready(url)); i++) {
      if (child.exitCode !== null) throw new Error(`postgres exited at start: ${stderr.trim()}`);
      if (i > 200) throw new Error(`postgres did not start within 20 s: ${stderr.trim()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stopWith = async (signal: NodeJS.Signals) => {
    const child = t.child;
    process.removeListener('exit', onExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  };
  await start();
  const sql = new pg.Client({ connectionString: url });
  sql.on('error', () => {});
  await sql.connect();
  Object.assign(t, {
    url,
    port,
    dir,
    sql,
    start,
    kill: () => stopWith('SIGQUIT'),
    stop: () => stopWith('SIGINT'),
    async cleanup() {
      await t.sql.end().catch(() => {});
      await stopWith('SIGQUIT');
      rmSync(dir, { recursive: true, force: true });
    },
  });
  return t;
}
