// Every Redis key and pub/sub channel name of a namespace, from one place. All share one hash tag.
import { escapeGlob } from '@durable-pubsub/client-sdk/protocol';

const NAMESPACE = /^[A-Za-z0-9_.-]{1,64}$/;

export function isValidNamespace(ns: string): boolean {
  return NAMESPACE.test(ns);
}

/** The member of `Keys.subs` for one (recipient, pattern set): a set key (JSON) never holds a raw newline, so the first one ends it. */
export function subMember(setKey: string, recipient: string): string {
  return `${setKey}\n${recipient}`;
}

export function parseSubMember(member: string): { setKey: string; recipient: string } {
  const nl = member.indexOf('\n');
  return { setKey: member.slice(0, nl), recipient: member.slice(nl + 1) };
}

export interface Keys {
  seq: string;
  epoch: string;
  /** run id of the Redis server the log was last checked on ('clean' after a flushed shutdown) */
  server: string;
  /** sorted set: channel -> newest id */
  index: string;
  /** hash: channel -> highest id removed (acked by every matching set, or by retention): its watermark */
  trimmed: string;
  /** sorted set: recipient -> last seen (ms) */
  recipients: string;
  /** sorted set: head id -> time (ms) it was the head; maps ages to ids */
  times: string;
  /** sorted set: pattern set key -> the lowest position among the recipients using it (the janitor's ack floors) */
  floors: string;
  /** set: the pattern set keys whose floor changed since the janitor last read them (Lua names it floors .. ':changed') */
  floorsChanged: string;
  /** string: the janitor that took the record of changes last (another one reads all floors) */
  floorsReader: string;
  /** sorted set: `subMember(set, recipient)` -> last seen (ms): every (recipient, pattern set), for its TTL */
  subs: string;
  /** prefix of the positions of one pattern set (sorted set recipient -> acked), built in Lua: prefix + set key */
  psetPrefix: string;
  /** the layout version of this namespace's keys (absent: written before positions were per pattern set) */
  layout: string;
  /** layout 1's set of distinct pattern sets (removed by the migration to layout 2) */
  legacyPsets: string;
  /** prefix of the recipient hashes (`recipient(name)` is prefix + name) */
  recipientPrefix: string;
  janitorLock: string;
  /** hash: settings of the `dps` Function library (maxLen, idemWindow), written by the server */
  config: string;
  /** prefix of the Durable Streams keys (/v1/stream): includes/ds.lua builds each stream's keys from it */
  streamPrefix: string;
  /** pub/sub channel: the path of each stream that changed (ds*.lua and publishmany-n.lua publish it) */
  streamWake: string;
  channel(ch: string): string;
  idem(key: string): string;
  recipient(name: string): string;
  /** prefix of the pub/sub channels that live frames are published on */
  livePrefix: string;
  /** `livePrefix` escaped for use inside a PSUBSCRIBE pattern */
  livePattern(pattern: string): string;
  /**
   * the namespace's one shard channel (Redis >= 7: SPUBLISH / SSUBSCRIBE): every live frame of the namespace, which
   * carries its channel; the hash tag puts it on the namespace's shard of a Cluster
   */
  liveShard: string;
  /** classic mode's control channel (SUBSCRIBE): the marker of a switch to sharded mode (pubsubmode-1.lua) */
  modeChannel: string;
}

export function keysFor(namespace: string): Keys {
  const t = `dps:{${namespace}}`;
  const livePrefix = `${t}:live:`;
  const escaped = escapeGlob(livePrefix);
  return {
    seq: `${t}:seq`,
    epoch: `${t}:epoch`,
    server: `${t}:redis`,
    index: `${t}:index`,
    trimmed: `${t}:trimmed`,
    recipients: `${t}:recipients`,
    times: `${t}:times`,
    floors: `${t}:floors`,
    floorsChanged: `${t}:floors:changed`,
    floorsReader: `${t}:floors:reader`,
    subs: `${t}:subs`,
    psetPrefix: `${t}:pset:`,
    layout: `${t}:layout`,
    legacyPsets: `${t}:psets`,
    recipientPrefix: `${t}:r:`,
    janitorLock: `${t}:janitor`,
    config: `${t}:config`,
    streamPrefix: `${t}:ds:`,
    streamWake: `${t}:ds:wake`,
    channel: (ch) => `${t}:ch:${ch}`,
    idem: (key) => `${t}:idem:${key}`,
    recipient: (name) => `${t}:r:${name}`, // = recipientPrefix + name
    livePrefix,
    livePattern: (pattern) => escaped + pattern,
    liveShard: `${t}:live`,
    modeChannel: `${t}:pubsub-mode`,
  };
}
