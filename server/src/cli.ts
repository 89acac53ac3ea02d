// The `durable-pubsub` command line: serve, publish, tail, recipients, channels, trim, import-legacy, pubsub-mode.
import { parseArgs } from 'node:util';
import { createClient, memoryStorage } from '@durable-pubsub/client-sdk';
import WebSocket from 'ws';
import { ConfigError, loadConfig } from './config';
import { importLegacy } from './import-legacy';
import { Janitor } from './janitor';
import { silentLogger } from './log';
import { commandConnection, connect } from './redis/connect';
import { Store } from './store';
import type { SetStats } from './subscriptions';

const USAGE = `usage: durable-pubsub <command> [options]

commands:
  serve [--workers N]          run the server in the foreground (configured by the environment), in N processes
  publish <channel> <json>     publish one message through a server (--key K for idempotency)
  tail <pattern>...            print messages as JSON lines, resuming like the SDK
                               (--recipient R to resume a named recipient, --from earliest|head, --count N)
  recipients                   list recipients with their position and lag (--json)
  channels                     list channels with their newest id and stored count (--json)
  trim [--dry-run]             trim now what every matching recipient acked, and apply retention (REDIS_URL)
  import-legacy                copy a log written by the original "durable Redis pubsub" design (REDIS_URL)
  pubsub-mode [classic|sharded]  print the namespace's pub/sub mode, or switch it with no loss (REDIS_URL, --force)

common options:
  --url URL     the server (default: $DPS_URL, else http://127.0.0.1:$PORT, PORT defaulting to 8080)
  --token JWT   a token for a server with auth on (default: $DPS_TOKEN): publish needs dps.pub, tail dps.sub,
                recipients and channels dps.admin
  --help        help for a command

exit codes: 0 done, 1 failed (server or Redis unreachable, request refused), 2 usage error`;

const HELP: Record<string, string> = {
  serve:
    'usage: durable-pubsub serve [--workers N]\n\nRuns the server in the foreground, configured by the environment (PORT, REDIS_URL, DPS_*; see the README).\nWith --workers N (default: $DPS_WORKERS, else one per core) a primary process keeps N worker processes serving\none port; 1: a single process.',
  publish:
    'usage: durable-pubsub publish <channel> <json> [--key K] [--url URL]\n\nPublishes one message; prints its id (and "dup" when the key was seen before).',
  tail: 'usage: durable-pubsub tail <pattern>... [--recipient R] [--from earliest|head] [--count N] [--url URL]\n\nPrints each message as a JSON line {id, ch, data, ts} and acks it. With --recipient, a later tail resumes\nwhere this one stopped; without, a throwaway recipient starts at the head (or the earliest message).\nGaps and resets go to stderr. Stops after N messages with --count, or on Ctrl-C.',
  recipients:
    'usage: durable-pubsub recipients [--json] [--url URL]\n\nLists recipients, a row per pattern set they use (each set has its own position): acked id, lag (messages\nbehind on matching channels), connections, last seen.',
  channels: 'usage: durable-pubsub channels [--json] [--url URL]\n\nLists channels: newest id and stored count.',
  trim: 'usage: durable-pubsub trim [--dry-run]\n\nTrims every channel now: messages every matching recipient acked, and retention (DPS_RETENTION_*).\nWith --dry-run prints what would go and removes nothing. Talks to Redis directly: needs REDIS_URL.',
  'import-legacy':
    'usage: durable-pubsub import-legacy [--source REDIS_URL] [--messages MESSAGES] [--stats PROC_STATS] [--channel legacy]\n\nCopies a log of the original design into this namespace: the sorted set MESSAGES (score: id, member: the\nmessage, kept as JSON when it parses, else as a string) becomes channel --channel, in order; the sorted set\nPROC_STATS (member: recipient, score: processed id) becomes recipients positioned after what they processed.\nRe-running it imports nothing twice. Reads --source (default REDIS_URL), writes REDIS_URL.',
  'pubsub-mode':
    'usage: durable-pubsub pubsub-mode [classic|sharded] [--force]\n\nPrints the pub/sub mode of the namespace (DPS_NAMESPACE), which every server of it follows: classic\n(PUBLISH/PSUBSCRIBE, any Redis) or sharded (SPUBLISH/SSUBSCRIBE of one shard channel, Redis >= 7 on every\nprimary: on a Cluster no publish crosses the cluster bus). With a mode, switches to it while servers run, with\nno loss: each server moves and its connections catch up from the store. Switch to sharded only once every server of the\nnamespace runs a version that has this command (an older one listens classic only): it refuses while a\nsubscriber connection of an older version is connected to Redis, unless --force. Talks to Redis directly: needs REDIS_URL.',
};

class UsageError extends Error {}

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

function baseUrl(flag: string | undefined): string {
  return (flag ?? process.env.DPS_URL ?? `http://127.0.0.1:${process.env.PORT || 8080}`).replace(/\/$/, '');
}

/** --token, else $DPS_TOKEN: sent as a bearer token (HTTP) or in the hello (tail). */
let token: string | undefined;

async function api(url: string, path: string, init: RequestInit = {}): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${url}${path}`, token ? { ...init, headers: { authorization: `Bearer ${token}` } } : init);
  } catch {
    throw new Error(`cannot reach the server at ${url} (is it running? set --url or DPS_URL)`);
  }
  const body = (await res.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
  if (!res.ok) throw new Error(`${res.status} ${body?.error?.code ?? ''}: ${body?.error?.message ?? res.statusText}`);
  return body;
}

function table(rows: Record<string, unknown>[], cols: string[]): void {
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (cells: string[]) =>
    out(
      cells
        .map((c, i) => c.padEnd(width[i] as number))
        .join('  ')
        .trimEnd(),
    );
  line(cols);
  for (const r of rows) line(cols.map((c) => String(r[c] ?? '')));
}

async function withStore<T>(fn: (store: Store, config: ReturnType<typeof loadConfig>) => Promise<T>): Promise<T> {
  const config = loadConfig();
  if (!config.redisUrl) throw new UsageError('this command talks to Redis directly: set REDIS_URL');
  const redis = commandConnection(config.redisUrl);
  try {
    await connect(redis, 5000).catch(() => {
      throw new Error(`cannot reach Redis at ${config.redisUrl}`);
    });
    const store = new Store(redis, config);
    await store.init();
    return await fn(store, config);
  } finally {
    redis.disconnect();
  }
}

async function tail(patterns: string[], v: Record<string, string | boolean | undefined>): Promise<void> {
  if (!patterns.length) throw new UsageError('tail needs at least one pattern');
  const from = (v.from as string | undefined) ?? 'head';
  if (from !== 'head' && from !== 'earliest') throw new UsageError('--from is earliest or head');
  const count = v.count === undefined ? Number.POSITIVE_INFINITY : Number(v.count);
  if (!(count > 0)) throw new UsageError('--count must be a positive number');
  const ws = `${baseUrl(v.url as string | undefined).replace(/^http/, 'ws')}${process.env.DPS_WS_PATH ?? '/ws'}`;
  const recipient = (v.recipient as string | undefined) ?? `tail-${Math.random().toString(36).slice(2, 10)}`;
  const client = createClient({ url: ws, recipient, from, token, storage: memoryStorage(), WebSocket });
  let printed = 0;
  await new Promise<void>((resolve, reject) => {
    const stop = () => {
      client.close(); // flushes the ack, so a later tail with this recipient resumes after what was printed
      resolve();
    };
    for (const p of patterns)
      client.subscribe(p, (m) => {
        // Past --count, hold the message unprocessed (and so unacked): the next tail gets it.
        if (printed >= count) return new Promise<void>(() => {});
        out(JSON.stringify({ id: m.id, ch: m.ch, data: m.data, ts: m.ts }));
        if (++printed >= count) setImmediate(stop);
      });
    client.on('gap', (g) => err(`gap: ${g.ch} ids ${g.after + 1}..${g.upTo} were removed by retention`));
    client.on('reset', (r) => err(`reset: the server's log was lost (epoch ${r.oldEpoch} -> ${r.newEpoch})`));
    client.on('state', (s) => s.newState === 'closed' && s.reason && reject(new Error(`closed: ${s.reason}`)));
    process.once('SIGINT', stop);
  });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    out(USAGE);
    return command ? 0 : 2;
  }
  if (!(command in HELP)) throw new UsageError(`unknown command "${command}"\n\n${USAGE}`);
  const { values: v, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      url: { type: 'string' },
      token: { type: 'string' },
      key: { type: 'string' },
      json: { type: 'boolean' },
      recipient: { type: 'string' },
      from: { type: 'string' },
      count: { type: 'string' },
      'dry-run': { type: 'boolean' },
      source: { type: 'string' },
      messages: { type: 'string' },
      stats: { type: 'string' },
      channel: { type: 'string' },
      workers: { type: 'string' },
      force: { type: 'boolean' },
    },
  });
  if (v.help) {
    out(HELP[command] as string);
    return 0;
  }
  const url = baseUrl(v.url);
  token = v.token ?? process.env.DPS_TOKEN;
  switch (command) {
    case 'serve': {
      const { serve } = await import('./serve');
      if (v.workers !== undefined && !/^[1-9]\d*$/.test(v.workers)) throw new UsageError('--workers must be a positive integer');
      await serve(v.workers === undefined ? process.env : { ...process.env, DPS_WORKERS: v.workers });
      return new Promise(() => {}); // runs until a signal stops the process
    }
    case 'publish': {
      const [ch, json] = positionals;
      if (!ch || json === undefined) throw new UsageError('publish needs <channel> <json>');
      let data: unknown;
      try {
        data = JSON.parse(json);
      } catch {
        throw new UsageError(`<json> is not valid JSON: ${json}`);
      }
      const r = (await api(url, '/v1/publish', {
        method: 'POST',
        body: JSON.stringify({ ch, data, ...(v.key ? { key: v.key } : {}) }),
      })) as { id: number; dup?: boolean };
      out(r.dup ? `${r.id} dup` : String(r.id));
      return 0;
    }
    case 'tail':
      await tail(positionals, v);
      return 0;
    case 'recipients': {
      const { recipients } = (await api(url, '/v1/recipients')) as { recipients: (Record<string, unknown> & { sets: SetStats[] })[] };
      if (v.json) out(JSON.stringify(recipients));
      // A row per pattern set: each has its own position (a recipient's devices and tabs watching different things).
      else
        table(
          recipients.flatMap((r) =>
            r.sets.map((s) => ({
              name: r.name,
              ...s,
              lastSeen: new Date(s.lastSeen).toISOString(),
              patterns: s.patterns.join(' '),
            })),
          ),
          ['name', 'patterns', 'lastAckedId', 'lag', 'connections', 'lastSeen'],
        );
      return 0;
    }
    case 'channels': {
      const { channels } = (await api(url, '/v1/channels')) as { channels: Record<string, unknown>[] };
      if (v.json) out(JSON.stringify(channels));
      else table(channels, ['channel', 'newestId', 'stored']);
      return 0;
    }
    case 'trim':
      return withStore(async (store, config) => {
        const janitor = new Janitor(store, config, silentLogger, () => new Set());
        if (v['dry-run']) {
          const plan = await janitor.plan();
          table(plan, ['channel', 'stored', 'byAck', 'byRetention']);
          out(
            `would remove ${plan.reduce((a, p) => a + p.byAck + p.byRetention, 0)} of ${plan.reduce((a, p) => a + p.stored, 0)} stored messages (dry run: nothing removed)`,
          );
        } else {
          const r = await janitor.runOnce(true);
          out(
            `removed ${r?.ackTrimmed ?? 0} acked by every matching recipient and ${r?.retentionTrimmed ?? 0} by retention, over ${r?.channels ?? 0} channels`,
          );
        }
        return 0;
      });
    case 'import-legacy':
      return withStore(async (store, config) => {
        const r = await importLegacy(store, {
          sourceUrl: v.source ?? (config.redisUrl as string),
          messagesKey: v.messages ?? 'MESSAGES',
          statsKey: v.stats ?? 'PROC_STATS',
          channel: v.channel ?? 'legacy',
          progress: (done, total) => err(`imported ${done}/${total} messages`),
        });
        out(`imported ${r.messages} messages into channel "${r.channel}" (${r.duplicates} already there) and ${r.recipients} recipients`);
        return 0;
      });
    case 'pubsub-mode': {
      const [mode, ...extra] = positionals;
      if (extra.length || (mode !== undefined && mode !== 'classic' && mode !== 'sharded'))
        throw new UsageError('pubsub-mode takes nothing, classic or sharded');
      return withStore(async (store) => {
        if (mode === undefined) {
          const stored = await store.pubsub.get();
          out(stored ?? 'none');
          if (!stored) err('(none stored: publishes go both ways until a server of the namespace decides)');
        } else {
          const before = await store.pubsub.switch(mode, { force: v.force });
          out(mode);
          err(before === mode ? `(it was ${mode} already)` : `(switched from ${before}; servers follow at once)`);
        }
        return 0;
      });
    }
  }
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError || e instanceof ConfigError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      err(`durable-pubsub: ${(e as Error).message}`);
      process.exitCode = 2;
    } else {
      err(`durable-pubsub: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = 1;
    }
  },
);
