// Durable Streams webhooks (§6.2): which URLs a subscription may name, and the Ed25519 key every node shares to sign
// what it POSTs there (kept in Redis; its public half is served as a JWK set).
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { isIP } from 'node:net';
import type { Store } from '../store';

/** §6.2: https anywhere public; plain http only to localhost or 127.0.0.x; never a private, link-local or loopback literal. */
export function webhookUrlAllowed(raw: string): boolean {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return false;
  }
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const dev = host === 'localhost' || /^127\.0\.0\.\d{1,3}$/.test(host);
  if (u.protocol === 'http:') return dev;
  if (u.protocol !== 'https:') return false;
  if (dev) return true;
  if (isIP(host) === 4) {
    const [a, b] = host.split('.').map(Number) as [number, number];
    return !(a === 10 || a === 127 || a === 0 || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) || (a === 169 && b === 254));
  }
  if (isIP(host) === 6) return !/^(::1?|f[cd]|fe[89ab])/i.test(host);
  return !host.endsWith('.local') && !host.endsWith('.internal');
}

export class WebhookSigner {
  private key: Promise<{ priv: KeyObject; kid: string; x: string }> | undefined;

  constructor(private readonly store: Store) {}

  /** The shared key: the first node to ask stores the one it offers, every other node takes that one. */
  private signing() {
    this.key ??= (async () => {
      const offer = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const priv = createPrivateKey(await this.store.streams.signingKey(offer));
      const x = createPublicKey(priv).export({ format: 'jwk' }).x as string;
      return { priv, x, kid: `ds_${createHash('sha256').update(x).digest('base64url').slice(0, 16)}` };
    })();
    return this.key;
  }

  async kid(): Promise<string> {
    return (await this.signing()).kid;
  }

  /** The JWK set of `/v1/stream/__ds/jwks.json`. */
  async jwks(): Promise<unknown> {
    const k = await this.signing();
    return { keys: [{ kty: 'OKP', crv: 'Ed25519', kid: k.kid, use: 'sig', alg: 'EdDSA', x: k.x }] };
  }

  /** POSTs `body` to `url` signed `Webhook-Signature: t=…,kid=…,ed25519=…` over `<t>.<body>`; throws unless 2xx. */
  async post(url: string, body: string): Promise<{ done: boolean }> {
    const k = await this.signing();
    const t = Math.floor(Date.now() / 1000);
    const sig = sign(null, Buffer.from(`${t}.${body}`), k.priv).toString('base64url');
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'webhook-signature': `t=${t},kid=${k.kid},ed25519=${sig}` },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    const answer = (await r.json().catch(() => ({}))) as { done?: unknown };
    if (!r.ok) throw new Error(`webhook answered ${r.status}`);
    return { done: answer.done === true };
  }
}
