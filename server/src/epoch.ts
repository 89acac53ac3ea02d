// Which Redis server holds the log, and which epoch this process serves: recovery after restarts and failovers, the Function library, clean shutdowns.
import type { Redis } from 'ioredis';
import { DpsError } from './errors';
import type { RecoverOutcome, Scripts } from './redis/commands';
import { primaries } from './redis/connect';
import type { Keys } from './redis/keys';
import { functionLibrary } from './redis/scripts';

/** A type, not an interface: it is logged as a plain record. */
export type RecoveredInfo = { outcome: Exclude<RecoverOutcome, 'same'>; epoch: string; runId: string; head: number };

export interface EpochHooks {
  /** the epoch is not the one this process knew (also when it learns its first) */
  changed(epoch: string, previous: string): void;
  /** the Redis server under the log changed (restart, failover) and this process decided what that means */
  recovered(info: RecoveredInfo): void;
}

/**
 * Whether every primary keeps every acknowledged write through a crash:
 * append-only with `appendfsync always`. Unknown (CONFIG refused) is no.
 */
export async function persistsEveryWrite(redis: Redis): Promise<boolean> {
  try {
    const answers = await Promise.all(primaries(redis).map((r) => r.config('GET', 'append*') as Promise<string[]>));
    return answers.every((flat) => {
      const c = new Map<string, string>();
      for (let i = 0; i + 1 < flat.length; i += 2) c.set(flat[i] as string, flat[i + 1] as string);
      return c.get('appendonly') === 'yes' && c.get('appendfsync') === 'always';
    });
  } catch {
    return false;
  }
}

export class EpochGuard {
  /** the epoch this process serves; empty until the first `recover` */
  current = '';
  /**
   * False after anything that may mean another Redis server holds the log now
   * (a dropped connection, an unreachable error): publishes and hellos wait
   * for `recover` first, so no id is handed out twice in one epoch.
   */
  verified = false;
  private verifying: Promise<void> | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly scripts: Scripts,
    private readonly hooks: EpochHooks,
  ) {}

  /** Something happened that may have put another Redis server under the log. */
  suspect(): void {
    this.verified = false;
  }

  /**
   * Checks which Redis server holds the log. A different one (restart,
   * failover) keeps the epoch only if nothing acknowledged can have been lost:
   * a restart of a server that fsyncs every write, or after a clean shutdown.
   * Otherwise the epoch changes and every client is told (`epochChanged`).
   */
  async recover(attempt = 0): Promise<void> {
    let r = await this.scripts.recover({ decision: 'check' });
    if (r.outcome === 'restarted') {
      const keep = await persistsEveryWrite(this.redis);
      r = await this.scripts.recover({ decision: keep ? 'keep' : 'reset', runId: r.runId });
    }
    const { epoch, outcome, runId, head } = r;
    if (outcome === 'restarted') {
      // yet another server meanwhile (a failover during a restart): look again
      if (attempt < 3) return this.recover(attempt + 1);
      throw new DpsError('unavailable', 'the Redis server under the log keeps changing');
    }
    if (outcome !== 'same') this.hooks.recovered({ outcome, epoch, runId, head });
    this.observe(epoch);
    this.verified = true;
  }

  /** `recover`, once for all who ask meanwhile. */
  verify(): Promise<void> {
    this.verifying ??= this.recover().finally(() => {
      this.verifying = null;
    });
    return this.verifying;
  }

  /** Learns the epoch a script saw; a different one means the log was lost. */
  observe(epoch: string): void {
    if (epoch === this.current) return;
    const previous = this.current;
    this.current = epoch;
    this.hooks.changed(epoch, previous);
  }

  /**
   * Installs the `dps` Function library (FCALL dps_publish) on every primary, with this server's settings for it. At
   * start and whenever the server under the log changed (a fresh Redis has no functions; they persist and replicate
   * otherwise). Says why not, rather than failing the server: Redis < 7, or Redis refusing writes right now.
   */
  async installFunctions(settings: { maxLen: number; idemWindowSec: number }): Promise<string | null> {
    try {
      const lib = functionLibrary();
      // Not the pub/sub mode: that is the namespace's (pubsubmode-1.lua), never one node's to overwrite.
      await this.redis.hset(this.keys.config, 'maxLen', settings.maxLen, 'idemWindow', settings.idemWindowSec);
      await Promise.all(primaries(this.redis).map((r) => r.call('FUNCTION', 'LOAD', 'REPLACE', lib)));
      return null;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  }

  /** Marks the log as flushed by a clean shutdown of its Redis server (the managed one): its next start keeps the epoch. */
  async markClean(): Promise<void> {
    await this.redis.set(this.keys.server, 'clean');
  }
}
