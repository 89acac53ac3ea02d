// Tabs of one browser sharing one socket per recipient: a leader elected with Web Locks, relaying over BroadcastChannel.
import type { ClientState, Message } from './client-types';
import type { ErrorCode } from './protocol/codes';
import type { Json } from './protocol/types';

export type TabMessage =
  | { t: 'join'; tab: string }
  | { t: 'subs'; tab: string; patterns: string[] }
  | { t: 'bye'; tab: string }
  | { t: 'leader'; tab: string }
  | { t: 'msg'; msg: Message }
  | { t: 'state'; state: ClientState }
  | { t: 'gap'; ch: string; after: number; upTo: number }
  | { t: 'reset'; oldEpoch: string; newEpoch: string; lastAckedId: number }
  | { t: 'pub'; tab: string; ref: string; ch: string; data: Json; key: string }
  | { t: 'puback'; tab: string; ref: string; id: number }
  | { t: 'puberr'; tab: string; ref: string; code: ErrorCode | string; message: string };

export interface TabLink {
  post(m: TabMessage): void;
  close(): void;
}

interface LockManagerLike {
  request(name: string, cb: () => Promise<void>): Promise<void>;
}

/**
 * Joins the tabs of `name`: `onLeader` runs in the one tab holding the lock
 * (the next tab gets it when that tab closes or calls close()), `onMessage`
 * gets what the other tabs post. Null where the browser has no Web Locks or
 * BroadcastChannel (then every tab keeps its own socket).
 */
export function joinTabs(name: string, onLeader: () => void, onMessage: (m: TabMessage) => void): TabLink | null {
  const locks = (globalThis.navigator as { locks?: LockManagerLike } | undefined)?.locks;
  if (!locks || typeof BroadcastChannel === 'undefined') return null;
  const channel = new BroadcastChannel(name);
  channel.onmessage = (ev: MessageEvent) => onMessage(ev.data as TabMessage);
  let release: (() => void) | null = null;
  let closed = false;
  locks
    .request(name, () => {
      if (closed) return Promise.resolve();
      onLeader();
      return new Promise<void>((resolve) => {
        release = resolve;
      });
    })
    .catch(() => {});
  return {
    post: (m) => channel.postMessage(m),
    close() {
      closed = true;
      channel.close();
      release?.();
    },
  };
}
