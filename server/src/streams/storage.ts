// The Durable Streams layout in Redis (includes/ds.lua), reached through the Store: the ds* scripts' typed callers.
import type { Scripts } from '../redis/commands';
import type { AppendResult, CreateResult, Producer, ReadResult, StreamConfig } from './types';

export type * from './types';

export class Streams {
  constructor(private readonly scripts: Scripts) {}

  /** Creates a stream or a fork of one (dscreate-1.lua); `entries` is the initial data (JSON streams: one message each). */
  create(path: string, config: StreamConfig, entries: Buffer[]): Promise<CreateResult> {
    return this.scripts.dscreate({ path, config, entries });
  }

  /** Appends `entries` (none: a close-only request) with every check at once (dsappend-1.lua). */
  append(path: string, a: { ct: string; close: boolean; seq?: string; producer?: Producer; entries: Buffer[] }): Promise<AppendResult> {
    return this.scripts.dsappend({ path, ...a });
  }

  /** The meta, and entries from `from` on up to about `maxBytes` (0: the meta alone) (dsread-1.lua). */
  read(path: string, from: number | 'now', maxBytes: number, touch: boolean): Promise<ReadResult> {
    return this.scripts.dsread({ path, from, maxBytes, touch });
  }

  /** Deletes a stream, or soft-deletes it while forks read it (dsdelete-1.lua). */
  delete(path: string): Promise<'deleted' | 'missing' | 'gone'> {
    return this.scripts.dsdelete({ path });
  }
}
