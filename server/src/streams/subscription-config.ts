// What a subscription request may say (§6.1), checked, and the refusals the subscription routes answer with.
import { StreamRefusal } from './requests';
import { webhookUrlAllowed } from './webhooks';

export interface Config {
  type: 'webhook' | 'pull-wake';
  pattern: string | null;
  streams: string[];
  webhook: { url: string } | null;
  wake_stream: string | null;
  lease_ttl_ms: number;
  description: string | null;
}

export class SubError extends StreamRefusal {
  constructor(status: number, code: string, extra: Record<string, unknown> = {}) {
    super(status, code);
    this.body = { error: { code, ...extra } };
  }
  readonly body: unknown;
}

const DEFAULT_LEASE = 30_000;

export function parseBody(body: Buffer): Record<string, unknown> {
  try {
    const v = JSON.parse(body.toString('utf8'));
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v;
  } catch {}
  throw new SubError(400, 'INVALID_REQUEST', { message: 'the body must be a JSON object' });
}

/** A subscription's config as a request gives it, checked (§6.1). */
export function configOf(input: Record<string, unknown>): Config {
  const bad = (message: string) => new SubError(400, 'INVALID_REQUEST', { message });
  const type = input.type;
  if (type !== 'webhook' && type !== 'pull-wake') throw bad('`type` must be webhook or pull-wake');
  const pattern = input.pattern ?? null;
  if (pattern !== null && (typeof pattern !== 'string' || !pattern)) throw bad('`pattern` must be a glob');
  const streams = input.streams ?? [];
  if (!Array.isArray(streams) || !streams.every((s) => typeof s === 'string' && s)) throw bad('`streams` must be stream paths');
  if (pattern === null && streams.length === 0) throw bad('give `pattern` or `streams`');
  const lease = input.lease_ttl_ms ?? DEFAULT_LEASE;
  if (typeof lease !== 'number' || !Number.isInteger(lease) || lease < 1000 || lease > 600_000)
    throw bad('`lease_ttl_ms` must be 1000 to 600000');
  const description = input.description ?? null;
  if (description !== null && typeof description !== 'string') throw bad('`description` must be a string');
  let webhook: Config['webhook'] = null;
  let wake: string | null = null;
  if (type === 'webhook') {
    const url = (input.webhook as { url?: unknown } | undefined)?.url;
    if (typeof url !== 'string') throw bad('`webhook.url` is needed');
    if (!webhookUrlAllowed(url)) throw new SubError(400, 'WEBHOOK_URL_REJECTED', { message: 'the webhook URL is not allowed' });
    webhook = { url };
  } else {
    if (typeof input.wake_stream !== 'string' || !input.wake_stream) throw bad('`wake_stream` is needed');
    wake = input.wake_stream;
  }
  return {
    type,
    pattern,
    streams: [...new Set(streams as string[])].sort(),
    webhook,
    wake_stream: wake,
    lease_ttl_ms: lease,
    description,
  };
}
