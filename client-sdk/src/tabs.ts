// The tab relay (entry `@durable-pubsub/client-sdk/tabs`): tabs of one browser share one socket; the leader relays, followers report their positions.
import type { ClientEvents, ClientState, Message, TabRelay, TabRelayFactory, TabRelayHost } from './client-types';
import type { PubFrame, SubFrame, UnsubFrame } from './protocol/types';
import { randomKey } from './random-key';
import type { Position } from './storage';
import { joinTabs, type TabLink, type TabMessage, type TabPosition } from './tab-link';

export type { TabRelay, TabRelayFactory, TabRelayHost } from './client-types';

/** Another tab: its patterns, its position (processed up to), and since when liveness checks have missed it. */
interface Peer {
  patterns: string[];
  pos?: TabPosition;
  missedSince?: number;
}

/**
 * A tab whose lock has been gone this long is gone (closed or crashed) and stops holding the acks back. Not sooner:
 * a tab that reloads comes back as a new tab, and until it has announced its saved position the old one's keeps
 * what it had not processed from being acked (and trimmed) under it.
 */
const GONE_AFTER_MS = 10_000;

class Relay implements TabRelay {
  role: 'leader' | 'follower' = 'follower';
  readonly #h: TabRelayHost;
  readonly #id = randomKey();
  #link: TabLink | null = null;
  readonly #peers = new Map<string, Peer>();
  /** this tab told the others its patterns (it does so again whenever they change) */
  #announced = false;
  /** a follower that announced its position ignores relayed messages of a stream that started after it */
  #waitFrom: number | undefined;
  /** the leader's stream, as this follower processes it: broken once a handler failed on one of its messages */
  readonly #stream: { broken?: boolean } = {};

  constructor(host: TabRelayHost) {
    this.#h = host;
  }

  /** Joins the tabs of this (url, recipient) as a follower; false where the browser cannot share. */
  join(): boolean {
    this.#link = joinTabs(
      this.#h.key,
      this.#id,
      () => this.#lead(),
      (m) => this.#on(m),
    );
    if (!this.#link) return false;
    this.#post({ t: 'join', tab: this.#id });
    // Announced once this tick's subscriptions are made: its position is its pattern set's.
    queueMicrotask(() => this.#announce(true));
    return true;
  }

  #post(m: TabMessage): void {
    this.#link?.post(m);
  }

  /** This tab holds the lock: it opens the socket for all the tabs. */
  #lead(): void {
    this.role = 'leader';
    this.#post({ t: 'leader', tab: this.#id });
    this.#h.transport.start();
  }

  /** Tells the other tabs this tab's patterns; with `full`, also its position (joining, or to a new leader). */
  #announce(full = false): void {
    if (!this.#announced && !full) return;
    this.#announced = true;
    const d = this.#h.delivery;
    const p = d.own();
    const pos: TabPosition | null | undefined = full ? p && { epoch: p.epoch, at: Math.max(p.lastAckedId, d.delivered) } : undefined;
    if (full) this.#waitFrom = pos?.at;
    this.#post({ t: 'subs', tab: this.#id, patterns: [...d.subs.keys()], pos });
  }

  #on(m: TabMessage): void {
    const h = this.#h;
    const d = h.delivery;
    const leader = this.role === 'leader';
    switch (m.t) {
      case 'join':
        this.#announce();
        if (leader) this.state(h.state());
        return;
      case 'subs': {
        const before = new Set(d.subs.keys());
        this.patterns(before);
        const peer = this.#peers.get(m.tab) ?? { patterns: [] };
        peer.patterns = m.patterns;
        this.#peers.set(m.tab, peer);
        const conn = h.transport.welcomed;
        if (m.pos !== undefined) {
          // Announced: its saved position, or (none, or of a lost log) from where the socket is now.
          const p = d.position;
          peer.pos = m.pos && (!p || m.pos.epoch === p.epoch) ? m.pos : p && conn ? { epoch: p.epoch, at: conn.at } : undefined;
        }
        if (!leader || !conn) return;
        // A tab that comes back behind the socket missed messages: resume the socket from the lowest position.
        if (peer.pos && peer.pos.at < conn.at) return h.transport.restart('resync tabs');
        for (const p of m.patterns) if (!before.has(p)) h.transport.send({ op: 'sub', pattern: p });
        return;
      }
      case 'done': {
        const peer = this.#peers.get(m.tab);
        if (peer) peer.pos = { epoch: m.epoch, at: m.at };
        if (leader) d.ackSoon();
        return;
      }
      case 'bye':
        this.#peers.delete(m.tab);
        return;
      case 'leader':
        // Publishes the old leader had not answered go to the new one (same idempotency keys).
        for (const p of h.pubs.values()) this.#pub(p.frame);
        this.#announce(true);
        return;
      case 'msg':
        if (leader) return;
        // The leader resumes the socket from this tab's position (it is behind): until then, nothing is skipped over.
        if (this.#waitFrom !== undefined) {
          if (m.from > this.#waitFrom) return;
          this.#waitFrom = undefined;
        }
        d.deliver(m.msg, this.#stream);
        return;
      case 'state':
        if (leader) return;
        // A follower without a position of its own starts where the socket is (it processes from now on).
        if (m.epoch && (!d.own() || d.position?.epoch !== m.epoch)) d.position = { epoch: m.epoch, lastAckedId: d.delivered };
        h.setState(m.state);
        return;
      case 'gap':
        if (!leader) h.emit('gap', { ch: m.ch, after: m.after, upTo: m.upTo });
        return;
      case 'reset':
        if (!leader) {
          d.delivered = 0;
          d.position = { epoch: m.newEpoch, lastAckedId: m.resumeFrom };
          h.emit('reset', { oldEpoch: m.oldEpoch, newEpoch: m.newEpoch, lastAckedId: m.lastAckedId });
        }
        return;
      case 'pub':
        if (leader)
          h.publish(m.ch, m.data, m.key).then(
            (id) => this.#post({ t: 'puback', tab: m.tab, ref: m.ref, id }),
            (e: ClientEvents['error']) => this.#post({ t: 'puberr', tab: m.tab, ref: m.ref, code: e.code, message: e.message }),
          );
        return;
      case 'puback':
      case 'puberr':
        if (m.tab === this.#id) h.settle(m.ref, m.t === 'puback' ? m.id : m);
        return;
    }
  }

  patterns(into: Set<string>): void {
    for (const p of this.#peers.values()) for (const pattern of p.patterns) into.add(pattern);
  }

  floor(own: Position | null): Position | null {
    let f = own;
    for (const { pos } of this.#peers.values())
      if (pos && (!f || (pos.epoch === f.epoch && pos.at < f.lastAckedId))) f = { epoch: pos.epoch, lastAckedId: pos.at };
    return f;
  }

  send(frame: SubFrame | UnsubFrame | PubFrame): void {
    const t = this.#h.transport;
    if (this.role === 'follower') {
      if (frame.op === 'pub') this.#pub(frame);
      else this.#announce();
    } else if (t.welcomed && (frame.op === 'pub' || !this.#peerHas(frame.pattern))) t.send(frame);
  }

  /** A publish for the leader to send (answered by puback or puberr). */
  #pub({ ref, ch, data, key }: PubFrame): void {
    this.#post({ t: 'pub', tab: this.#id, ref: ref as string, ch, data, key: key as string });
  }

  /** Some other tab's view needs `pattern`: the socket serves it whatever this tab does. */
  #peerHas(pattern: string): boolean {
    for (const p of this.#peers.values()) if (p.patterns.includes(pattern)) return true;
    return false;
  }

  done(p: Position): boolean {
    if (this.role === 'follower') {
      this.#post({ t: 'done', tab: this.#id, epoch: p.epoch, at: p.lastAckedId });
      return true;
    }
    // Tabs that went away without a word (closed, crashed) stop holding the acks back once the browser has released
    // their lock for GONE_AFTER_MS.
    if (this.#peers.size)
      this.#link?.alive().then((alive) => {
        const now = Date.now();
        for (const [tab, peer] of this.#peers)
          if (alive.has(tab)) peer.missedSince = undefined;
          else if (peer.missedSince === undefined) peer.missedSince = now;
          else if (now - peer.missedSince >= GONE_AFTER_MS) this.#peers.delete(tab);
      });
    return false;
  }

  behind(epoch: string, resumeFrom: number): boolean {
    for (const { pos } of this.#peers.values()) if (pos?.epoch === epoch && pos.at < resumeFrom) return true;
    return false;
  }

  msg(msg: Message, from: number): void {
    this.#post({ t: 'msg', msg, from });
  }

  gap(gap: ClientEvents['gap']): void {
    this.#post({ t: 'gap', ...gap });
  }

  reset(reset: ClientEvents['reset'], resumeFrom: number): void {
    this.#post({ t: 'reset', ...reset, resumeFrom });
  }

  state(state: ClientState): void {
    if (this.role === 'leader') this.#post({ t: 'state', state, epoch: this.#h.delivery.position?.epoch });
  }

  close(): void {
    this.#post({ t: 'bye', tab: this.#id });
    this.#link?.close();
  }
}

/**
 * Shares one socket among the tabs of a browser: `createClient({ …, shareAcrossTabs: tabRelay })`. A leader tab
 * (Web Locks) connects and relays over BroadcastChannel; when it closes another takes over. Where the browser has
 * neither, each tab keeps its own socket.
 */
export const tabRelay: TabRelayFactory = (host) => {
  const relay = new Relay(host);
  return relay.join() ? relay : null;
};
