// Every Redis key and pub/sub channel name of a namespace, from one place. All share one hash tag.
import { escapeGlob } from '@durable-pubsub/client-sdk/protocol';

const NAMESPACE = /^[A-Za-z0-9_.-]{1,64}$/;

export function isValidNamespace(ns: string): boolean {
  return NAMESPACE.test(ns);
}

export interface Keys {
  seq: string;
  epoch: string;
  /** run id of the Redis server the log was last checked on ('clean' after a flushed shutdown) */
  server: string;
  /** sorted set: channel -> newest id */
  index: string;
  /** hash: channel -> highest id removed by retention */
  trimmed: string;
  /** sorted set: recipient -> last seen (ms) */
  recipients: string;
  /** sorted set: head id -> time (ms) it was the head; maps ages to ids */
  times: string;
  /** set: the distinct pattern sets (JSON arrays) that recipients have */
  psets: string;
  /** prefix of the pattern sets' sorted sets (recipient -> acked), built in Lua: prefix + patterns JSON */
  psetPrefix: string;
  /** prefix of the recipient hashes (`recipient(name)` is prefix + name) */
  recipientPrefix: string;
  janitorLock: string;
  channel(ch: string): string;
  idem(key: string): string;
  recipient(name: string): string;
  /** prefix of the pub/sub channels that live frames are published on */
  livePrefix: string;
  /** `livePrefix` escaped for use inside a PSUBSCRIBE pattern */
  livePattern(pattern: string): string;
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
    psets: `${t}:psets`,
    psetPrefix: `${t}:pset:`,
    recipientPrefix: `${t}:r:`,
    janitorLock: `${t}:janitor`,
    channel: (ch) => `${t}:ch:${ch}`,
    idem: (key) => `${t}:idem:${key}`,
    recipient: (name) => `${t}:r:${name}`, // = recipientPrefix + name
    livePrefix,
    livePattern: (pattern) => escaped + pattern,
  };
}
