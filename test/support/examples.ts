// Runs an example of examples/ as a user would, in its own process on a free port, and keeps its output for failures.
import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from '@durable-pubsub/server';
import { until } from './env';

export const EXAMPLES = new URL('../../examples/', import.meta.url).pathname;

/**
 * How an example's server.mjs runs: with tsx while @durable-pubsub/server's entry is TypeScript;
 * `[process.execPath]` (plain `node`) once the package is compiled.
 */
const NODE = [process.execPath, '--import', 'tsx'];

export interface ExampleProcess {
  name: string;
  url: string;
  wsUrl: string;
  child: ChildProcess;
  /** everything it wrote to stdout and stderr */
  output(): string;
  /** SIGTERM (SIGKILL if it has not exited 10 s later), then how it exited */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts examples/<name>/server.mjs with PORT, REDIS_URL (and `env`) and resolves once its /readyz answers 200. */
export async function startExample(name: string, redisUrl: string, env: Record<string, string> = {}): Promise<ExampleProcess> {
  const port = await freePort();
  const [node, ...args] = NODE as [string, ...string[]];
  // cwd is the example's folder: it imports what its package.json declares, as a user's copy would.
  const child = spawn(node, [...args, 'server.mjs'], {
    cwd: `${EXAMPLES}${name}`,
    env: { ...process.env, PORT: String(port), REDIS_URL: redisUrl, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const url = `http://127.0.0.1:${port}`;
  const ex: ExampleProcess = {
    name,
    url,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const hung = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const how = await exited;
      clearTimeout(hung);
      return how;
    },
  };
  try {
    await until(
      async () => {
        if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}`);
        return fetch(`${url}/readyz`).then(
          (r) => r.ok,
          () => false,
        );
      },
      20_000,
      `examples/${name} to be ready`,
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`examples/${name} did not start: ${(err as Error).message}\n--- its output ---\n${out}`);
  }
  return ex;
}
