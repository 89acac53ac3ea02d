// One Redis subscriber connection per server, fanning live frames out to the sessions whose patterns match.
import { isUtf8 } from 'node:buffer';
import { EventEmitter } from 'node:events';
import { checkServerFrame, type Matcher, MSG_FRAME_PREFIX } from '@durable-pubsub/client-sdk/protocol';
import { matcherFor } from './matchers';
import type { PubsubMode } from './redis/commands';
import type { Subscriber } from './redis/connect';
import type { Keys } from './redis/keys';
import { textFrame } from './wire';

/** What the bridge needs of a session. */
export interface LiveSink {
  /** `wire`: the message's frame as WebSocket bytes, built once for every sink */
  offerLive(id: number, ch: string, wire: Buffer): void;
  /** message `id` of `ch` cannot be delivered (not one valid JSON message): report it, never skip it silently */
  offerGap(id: number, ch: string): void;
}

interface PatternEntry {
  matcher: Matcher;
  sinks: Set<LiveSink>;
}

export type BridgeState = 'down' | 'up';

export interface BridgeEvents {
  /**
   * live messages may be lost until `up`: the subscriber connection dropped ('lost'), or the namespace's pub/sub mode
   * changed and the bridge is moving to the new path ('switch'); either way connections catch up from the store
   */
  down: [reason: 'lost' | 'switch'];
  up: [];
  /** the bridge follows the namespace to another pub/sub mode (`marker`: told by the switch's marker, else by a read) */
  switch: [mode: PubsubMode, from: PubsubMode, marker: boolean];
  /** Redis refused a (un)subscription (an ACL without SSUBSCRIBE, a Cluster moving): not up until one succeeds */
  refused: [err: Error, mode: PubsubMode];
  /** a live frame that is not one valid JSON message (written around the server's checks): reported as a gap */
  invalid: [id: number, ch: string];
}

/**
 * Whether a stored frame is one a client can use: valid UTF-8, JSON, and a `msg` frame by the protocol's guard (the
 * SDK applies the same guard, so a frame that failed it would make the SDK resume, be sent again, and fail again).
 * Every publishing path builds its frames itself from data that is JSON (the server's by construction, FCALL
 * dps_publish by its own check), so this holds for anything the server did not write itself. Once per live message,
 * not per socket: ~1 µs.
 */
export function validFrame(frame: Buffer): boolean {
  if (!isUtf8(frame)) return false;
  try {
    const f = checkServerFrame(JSON.parse(frame.toString('utf8')));
    return typeof f === 'object' && f.op === 'msg';
  } catch {
    return false;
  }
}

const CHANNEL_CACHE_MAX = 10_000;
/** the prefix is ASCII: its length in characters is its length in bytes */
const ID_OFFSET = MSG_FRAME_PREFIX.length;

/** The id of a frame the publish script built (at `start` in `frame`); it always starts with MSG_FRAME_PREFIX. */
export function frameId(frame: Buffer, start = 0, end = frame.length): number {
  let id = 0;
  for (let i = start + ID_OFFSET; i < end; i++) {
    const c = frame[i] as number;
    if (c < 48 || c > 57) break;
    id = id * 10 + (c - 48);
  }
  return id;
}

const CH_FIELD = Buffer.from(',"ch":"');

/**
 * The channel named in a frame the publish script built (after its id: `,"ch":"…"`), or null for a frame of any other
 * shape. Sharded pub/sub has one shard channel per namespace, so the frame is the only place that names it.
 */
export function frameChannel(frame: Buffer): string | null {
  let i = ID_OFFSET;
  while (i < frame.length && (frame[i] as number) >= 48 && (frame[i] as number) <= 57) i++;
  if (i + CH_FIELD.length > frame.length || frame.compare(CH_FIELD, 0, CH_FIELD.length, i, i + CH_FIELD.length) !== 0) return null;
  const start = i + CH_FIELD.length - 1;
  let escaped = false;
  for (i = start + 1; i < frame.length; i++) {
    const c = frame[i] as number;
    if (c === 0x22) break;
    if (c === 0x5c) {
      escaped = true;
      i++;
    }
  }
  if (i >= frame.length) return null;
  if (!escaped) return frame.toString('utf8', start + 1, i);
  try {
    const ch: unknown = JSON.parse(frame.toString('utf8', start, i + 1));
    return typeof ch === 'string' ? ch : null;
  } catch {
    return null;
  }
}

/** The slow path, for a frame on the shard channel that the scripts did not build (its fields in another order). */
function parsedChannel(frame: Buffer): string | null {
  try {
    const ch: unknown = JSON.parse(frame.toString('utf8')).ch;
    return typeof ch === 'string' ? ch : null;
  } catch {
    return null;
  }
}

/** The marker a switch of the namespace's pub/sub mode publishes on the old path (pubsubmode-1.lua). */
const MARKER_PREFIX = Buffer.from('{"op":"pubsub-mode",');

function markerMode(frame: Buffer): PubsubMode | null {
  try {
    const mode: unknown = JSON.parse(frame.toString('utf8')).mode;
    return mode === 'classic' || mode === 'sharded' ? mode : null;
  } catch {
    return null;
  }
}

/** What the bridge holds in Redis: PSUBSCRIBE patterns, SUBSCRIBE channels, SSUBSCRIBE shard channels. */
type SubKind = 'pattern' | 'channel' | 'shard';
const SUBSCRIBE = { pattern: 'psubscribe', channel: 'subscribe', shard: 'ssubscribe' } as const;
const UNSUBSCRIBE = { pattern: 'punsubscribe', channel: 'unsubscribe', shard: 'sunsubscribe' } as const;

/**
 * Redis checks every PSUBSCRIBE pattern on every PUBLISH, so Redis never holds
 * one pattern per client: each distinct pattern once while there are few
 * ("narrow"), and past `wideThreshold` the namespace's whole live stream with
 * matching done here ("wide"). Either way a channel's matching patterns are
 * computed once and cached. With sharded pub/sub (Redis >= 7) it is always
 * wide: one SSUBSCRIBE of the namespace's shard channel, which on a Cluster
 * lives on the namespace's shard, so no publish crosses the cluster bus.
 */
export class Bridge extends EventEmitter<BridgeEvents> {
  state: BridgeState = 'down';
  /** highest id seen on the live stream */
  lastId = 0;
  private readonly patterns = new Map<string, PatternEntry>();
  private readonly cache = new Map<string, PatternEntry[]>();
  /** what Redis is subscribed to right now, by name (Redis-side patterns and channels) */
  private readonly subscribed = new Map<string, SubKind>();
  private wide = false;
  private closing = false;
  private syncing: Promise<void> = Promise.resolve();
  private waiters: (() => void)[] = [];
  /** the last change of subscriptions failed: not live until one succeeds */
  private failed = false;
  private readonly prefixLength: number;

  constructor(
    private readonly sub: Subscriber,
    private readonly keys: Keys,
    private readonly wideThreshold: number,
    /** the namespace's pub/sub mode as this bridge subscribes by it; `follow` moves it */
    private _mode: PubsubMode = 'classic',
  ) {
    super();
    this.prefixLength = Buffer.byteLength(keys.livePrefix);
    sub.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) =>
      this.onMessage(channel.toString('utf8', this.prefixLength), message),
    );
    sub.on('smessageBuffer', (_channel: Buffer, message: Buffer) => {
      if (message.subarray(0, MARKER_PREFIX.length).equals(MARKER_PREFIX)) this.onMarker(message);
      else this.onMessage(frameChannel(message) ?? parsedChannel(message), message);
    });
    // Classic mode's only plain channel: the control channel, which carries the marker of a switch to sharded.
    sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => this.onMarker(message));
    sub.on('close', () => this.onDown());
    sub.on('ready', () => this.onReady());
  }

  get mode(): PubsubMode {
    return this._mode;
  }

  /**
   * Follows the namespace's pub/sub mode (read from Redis, or told by a switch's marker). A change is handled exactly
   * like a lost subscription, and is one: `down` at once (connections hold what still arrives and catch up from the
   * store), the subscriber connection is opened anew and subscribes the new path, then `up`; a reader that reads the
   * head after that misses nothing. (A new connection rather than subscribe-then-unsubscribe on the same one: Redis
   * counts shard and classic subscriptions apart, and ioredis leaves subscriber mode when either count reaches 0.)
   * The same mode retries a subscription that failed.
   */
  follow(mode: PubsubMode, marker = false): void {
    if (this.closing) return;
    if (mode === this._mode) {
      if (this.failed && this.state === 'down' && this.sub.status === 'ready') this.resync();
      return;
    }
    const from = this._mode;
    this._mode = mode;
    this.emit('switch', mode, from, marker);
    if (this.state === 'up') {
      this.state = 'down';
      this.emit('down', 'switch');
    }
    this.subscribed.clear();
    this.sub.disconnect(true);
  }

  /** Resolves when live delivery covers every registered pattern. */
  ready(): Promise<void> {
    if (this.state === 'up') return this.syncing;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  get patternCount(): number {
    return this.patterns.size;
  }

  /** Adds `sink` under `patterns`; resolves once Redis delivers them (or at `up`, if down now). */
  async add(sink: LiveSink, patterns: Iterable<string>): Promise<void> {
    let changed = false;
    for (const p of patterns) {
      let entry = this.patterns.get(p);
      if (!entry) {
        entry = { matcher: matcherFor(p), sinks: new Set() };
        this.patterns.set(p, entry);
        changed = true;
      }
      entry.sinks.add(sink);
    }
    if (changed) {
      this.cache.clear();
      this.resync();
    }
    await this.ready();
  }

  remove(sink: LiveSink, patterns: Iterable<string>): void {
    let changed = false;
    for (const p of patterns) {
      const entry = this.patterns.get(p);
      if (!entry) continue;
      entry.sinks.delete(sink);
      if (entry.sinks.size === 0) {
        this.patterns.delete(p);
        changed = true;
      }
    }
    if (changed) {
      this.cache.clear();
      this.resync();
    }
  }

  /** `ch`: null for a frame on the shard channel that names none (not written by the server's scripts) */
  private onMessage(ch: string | null, frame: Buffer): void {
    const id = frameId(frame);
    // One PUBLISH reaches us once per matching Redis pattern, back to back.
    if (id === this.lastId) return;
    this.lastId = id;
    if (ch === null) {
      this.emit('invalid', id, '');
      return;
    }
    let entries = this.cache.get(ch);
    if (!entries) {
      entries = [];
      for (const entry of this.patterns.values()) if (entry.matcher(ch)) entries.push(entry);
      if (this.cache.size >= CHANNEL_CACHE_MAX) this.cache.clear();
      this.cache.set(ch, entries);
    }
    if (entries.length === 0) return;
    if (!validFrame(frame)) {
      this.emit('invalid', id, ch);
      for (const entry of entries) for (const sink of entry.sinks) sink.offerGap(id, ch);
      return;
    }
    const wire = textFrame(frame);
    for (const entry of entries) for (const sink of entry.sinks) sink.offerLive(id, ch, wire);
  }

  private onMarker(message: Buffer): void {
    const mode = markerMode(message);
    if (mode) this.follow(mode, true);
  }

  private onDown(): void {
    if (this.closing) return;
    this.subscribed.clear();
    if (this.state === 'down') return;
    this.state = 'down';
    this.emit('down', 'lost');
  }

  private onReady(): void {
    this.subscribed.clear();
    this.resync();
  }

  /**
   * Brings Redis's subscriptions in line with the registered patterns and the mode, one change set at a time; while
   * down, the last change set that succeeds on a ready connection brings the bridge up.
   */
  private resync(): void {
    const syncing = this.syncing
      .then(() => this.sync())
      .then(
        () => {
          this.failed = false;
        },
        (err: Error) => {
          this.failed = true;
          this.emit('refused', err, this._mode);
        },
      );
    this.syncing = syncing;
    void syncing.then(() => {
      // A later change set is on its way: it decides.
      if (this.syncing !== syncing || this.state === 'up' || this.closing) return;
      if (this.sub.status !== 'ready' || this.failed) return;
      this.state = 'up';
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w();
      this.emit('up');
    });
  }

  private async sync(): Promise<void> {
    if (this.sub.status !== 'ready') return;
    const n = this.patterns.size;
    if (n > this.wideThreshold) this.wide = true;
    else if (n <= this.wideThreshold / 2) this.wide = false;
    const want = new Map<string, SubKind>();
    // Sharded: the one shard channel carries every frame of the namespace and the marker of a switch back to classic;
    // held while any pattern is registered (a node with no reader, say one that only publishes, reads no live stream:
    // a switch meanwhile reaches it by the mode's read, within DPS_PUBSUB_MODE_POLL). Classic: the patterns, and the
    // control channel (the marker of a switch).
    if (this._mode === 'sharded') {
      if (n > 0) want.set(this.keys.liveShard, 'shard');
    } else {
      want.set(this.keys.modeChannel, 'channel');
      if (this.wide) want.set(this.keys.livePattern('*'), 'pattern');
      else for (const p of this.patterns.keys()) want.set(this.keys.livePattern(p), 'pattern');
    }
    const add = [...want].filter(([name]) => !this.subscribed.has(name));
    const drop = [...this.subscribed].filter(([name]) => !want.has(name));
    // Subscribe before unsubscribing, so a narrow<->wide or classic<->sharded switch never leaves a hole.
    for (const kind of ['shard', 'channel', 'pattern'] as const) {
      const names = add.filter(([, k]) => k === kind).map(([name]) => name);
      if (!names.length) continue;
      await this.sub[SUBSCRIBE[kind]](...names);
      for (const name of names) this.subscribed.set(name, kind);
    }
    for (const kind of ['shard', 'channel', 'pattern'] as const) {
      const names = drop.filter(([, k]) => k === kind).map(([name]) => name);
      if (!names.length) continue;
      await this.sub[UNSUBSCRIBE[kind]](...names);
      for (const name of names) this.subscribed.delete(name);
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    this.sub.disconnect();
  }
}
