// Helpers for the HTTP readers' tests: reader URLs from a query, batch publishes, a recipient's stored position, tokens.
import { SignJWT } from 'jose';

export interface ReadQuery {
  recipient?: string;
  subs?: string[];
  from?: 'head' | 'earliest';
  token?: string;
  lastEventId?: string;
  ping?: boolean;
}

/** The URL of GET /v1/sse (or another reader's `path`) with `q` in its query, `subs` repeated. */
export function sseUrl(server: { url: string }, q: ReadQuery, path = '/v1/sse'): string {
  const u = new URL(path, server.url);
  if (q.recipient !== undefined) u.searchParams.set('recipient', q.recipient);
  for (const p of q.subs ?? []) u.searchParams.append('subs', p);
  if (q.from) u.searchParams.set('from', q.from);
  if (q.token) u.searchParams.set('token', q.token);
  if (q.lastEventId) u.searchParams.set('lastEventId', q.lastEventId);
  if (q.ping) u.searchParams.set('ping', '1');
  return u.href;
}

/** Publishes one batch, a message per channel given (data `{n, ch}`), in order; returns their ids. */
export async function publishBatch(server: { url: string }, channels: string[], headers: Record<string, string> = {}): Promise<number[]> {
  const res = await fetch(`${server.url}/v1/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ messages: channels.map((ch, i) => ({ ch, data: { n: i, ch } })) }),
  });
  const body = (await res.json()) as { ids: number[] };
  if (res.status !== 200) throw new Error(`publish answered ${res.status}: ${JSON.stringify(body)}`);
  return body.ids;
}

/** The ids of the messages whose channel `want`s, from a batch's ids and channels. */
export const pick = (ids: number[], channels: string[], want: (ch: string) => boolean): number[] =>
  ids.filter((_, i) => want(channels[i] as string));

/** A recipient's entry in GET /v1/recipients (auth off). */
export async function recipientEntry(server: { url: string }, name: string): Promise<any> {
  const body = (await (await fetch(`${server.url}/v1/recipients`)).json()) as { recipients: { name: string }[] };
  return body.recipients.find((r) => r.name === name);
}

/** An HS256 token for `sub` that may read `grant` and publish anywhere; `exp` as jose takes it ('1h', or seconds since epoch). */
export function mintToken(secret: string, sub: string, grant: string[], exp: string | number = '1h'): Promise<string> {
  return new SignJWT({ dps: { sub: grant, pub: ['*'] } })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(secret));
}
