// Random ids: a publish's default idempotency key, a tab's id among the tabs that share a socket.

export function randomKey(): string {
  const c = globalThis.crypto;
  return c?.randomUUID ? c.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}
