// The link between the tabs that share a socket: a leader elected with Web Locks, messages over BroadcastChannel.
import type { ClientErrorCode, ClientState, Message } from './client-types';
import type { Json } from './protocol/types';

/** A tab's own position, as it tells the others (positions of another epoch mean nothing). */
export interface TabPosition {
  epoch: string;
  at: number;
}

export type TabMessage =
  | { t: 'join'; tab: string }
  /** a tab's patterns; `pos` (its saved position) only when it announces itself (joining, or to a new leader) */
  | { t: 'subs'; tab: string; patterns: string[]; pos?: TabPosition | null }
  /** a follower processed everything up to `at`: the leader acks no further than the lowest of these */
  | ({ t: 'done'; tab: string } & TabPosition)
  | { t: 'bye'; tab: string }
  | { t: 'leader'; tab: string }
  /** a message the leader's socket delivered, on a stream that resumed after `from` */
  | { t: 'msg'; msg: Message; from: number }
  | { t: 'state'; state: ClientState; epoch?: string }
  | { t: 'gap'; ch: string; after: number; upTo: number }
  | { t: 'reset'; oldEpoch: string; newEpoch: string; lastAckedId: number; resumeFrom: number }
  | { t: 'pub'; tab: string; ref: string; ch: string; data: Json; key: string }
  | { t: 'puback'; tab: string; ref: string; id: number }
  | { t: 'puberr'; tab: string; ref: string; code: ClientErrorCode; message: string };

export interface TabLink {
  /** posts to the other tabs (nothing once closed) */
  post(m: TabMessage): void;
  /** the ids of the tabs alive now (each holds a lock of its own while it lives, crashed or not closed) */
  alive(): Promise<Set<string>>;
  close(): void;
}

interface LockManagerLike {
  request(name: string, cb: () => Promise<void>): Promise<void>;
  query(): Promise<{ held?: { name?: string }[] }>;
}

/**
 * Joins the tabs of `name`: `onLeader` runs in the one tab holding the lock
 * (the next tab gets it when that tab closes or calls close()), `onMessage`
 * gets what the other tabs post. Null where the browser has no Web Locks or
 * BroadcastChannel (then every tab keeps its own socket).
 */
export function joinTabs(name: string, tab: string, onLeader: () => void, onMessage: (m: TabMessage) => void): TabLink | null {
  const locks = (globalThis.navigator as { locks?: LockManagerLike } | undefined)?.locks;
  if (!locks || typeof BroadcastChannel === 'undefined') return null;
  const channel = new BroadcastChannel(name);
  channel.onmessage = (ev: MessageEvent) => onMessage(ev.data as TabMessage);
  const releases: (() => void)[] = [];
  let closed = false;
  const hold = (lock: string, then?: () => void) =>
    locks
      .request(lock, () => {
        if (closed) return Promise.resolve();
        then?.();
        return new Promise<void>((resolve) => releases.push(resolve));
      })
      .catch(() => {});
  // A lock of this tab's own: the browser releases it when the tab goes, however it goes.
  const mine = `${name}#`;
  void hold(mine + tab);
  void hold(name, onLeader);
  return {
    post(m) {
      if (!closed) channel.postMessage(m);
    },
    async alive() {
      const held = (await locks.query()).held ?? [];
      return new Set(
        held
          .map((l) => l.name ?? '')
          .filter((n) => n.startsWith(mine))
          .map((n) => n.slice(mine.length)),
      );
    },
    close() {
      closed = true;
      channel.close();
      for (const r of releases) r();
    },
  };
}
