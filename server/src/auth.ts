// Authentication and grants: JWTs verified with jose (HS256, or RS256/ES256 with a public key); open mode without a key.
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Matcher } from '@durable-pubsub/client-sdk/protocol';
import { errors, jwtVerify } from 'jose';
import type { Config } from './config';
import { DpsError } from './errors';
import { matcherFor } from './matchers';

const CACHE_MAX = 10_000;

/** What a token allows: whose stream, which channels to receive and publish, admin routes. */
export class Grant {
  /** false when some `sub` grant pattern is `*`: the hot path then skips the check */
  readonly limitsReading: boolean;
  private readonly read: Matcher[];
  private readonly write: Matcher[];
  private readonly readCache = new Map<string, boolean>();

  constructor(
    /** the recipient the token is for; null in open mode (any) */
    readonly subject: string | null,
    /** seconds since epoch; null: never */
    readonly exp: number | null,
    subPatterns: string[],
    pubPatterns: string[],
    readonly admin: boolean,
  ) {
    this.limitsReading = !subPatterns.includes('*');
    this.read = subPatterns.map(matcherFor);
    this.write = pubPatterns.map(matcherFor);
  }

  /** May this grant receive messages of `ch`? Cached per channel: it sits on the delivery path. */
  canRead(ch: string): boolean {
    if (!this.limitsReading) return true;
    let ok = this.readCache.get(ch);
    if (ok === undefined) {
      ok = this.read.some((m) => m(ch));
      if (this.readCache.size >= CACHE_MAX) this.readCache.clear();
      this.readCache.set(ch, ok);
    }
    return ok;
  }

  canPublish(ch: string): boolean {
    return this.write.some((m) => m(ch));
  }
}

export const OPEN_GRANT = new Grant(null, null, ['*'], ['*'], true);

export interface Authenticator {
  readonly enabled: boolean;
  /** The grant of a token; throws DpsError `unauthorized` for a missing, malformed, badly signed or expired one. */
  verify(token: string | undefined): Promise<Grant>;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

export function createAuthenticator(config: Pick<Config, 'jwtSecret' | 'jwtPublicKey'>): Authenticator {
  let key: Uint8Array | KeyObject;
  let algorithms: string[];
  if (config.jwtPublicKey) {
    const pub = createPublicKey(config.jwtPublicKey.replace(/\\n/g, '\n'));
    key = pub;
    // One algorithm family per key type: an HS256 token signed with the public key as a secret is refused.
    algorithms = pub.asymmetricKeyType === 'rsa' ? ['RS256'] : pub.asymmetricKeyType === 'ec' ? ['ES256'] : [];
    if (!algorithms.length) throw new Error('DPS_JWT_PUBLIC_KEY must be an RSA or EC (P-256) public key');
  } else if (config.jwtSecret) {
    key = new TextEncoder().encode(config.jwtSecret);
    algorithms = ['HS256'];
  } else {
    return { enabled: false, verify: async () => OPEN_GRANT };
  }
  return {
    enabled: true,
    async verify(token) {
      if (!token) throw new DpsError('unauthorized', 'a token is required');
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(token, key, { algorithms, requiredClaims: ['sub', 'exp'] }));
      } catch (err) {
        const why = err instanceof errors.JWTExpired ? 'the token has expired' : 'the token is not valid';
        throw new DpsError('unauthorized', why);
      }
      const dps = (typeof payload.dps === 'object' && payload.dps !== null ? payload.dps : {}) as Record<string, unknown>;
      return new Grant(payload.sub as string, payload.exp as number, strings(dps.sub), strings(dps.pub), dps.admin === true);
    },
  };
}

/** `Authorization: Bearer <token>` of a request, if any. */
export function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return m?.[1];
}
