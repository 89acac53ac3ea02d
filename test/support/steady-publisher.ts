// A publisher in its own process for the fault tests: one message at a time over HTTP, each with its own
// idempotency key and retried with that key until it is stored, until SIGTERM; then prints what happened.
// With several base URLs (nodes of one deployment, comma-separated), a refused attempt moves to the next.
// usage: tsx steady-publisher.ts <baseUrl[,baseUrl…]> <name> <pauseMs> <channel,channel,...>
export {};

const [bases, name, pauseArg, chArg] = process.argv.slice(2);
const nodes = (bases ?? '').split(',');
let node = 0;
const pause = Number(pauseArg);
const channels = (chArg ?? '').split(',');
const published: [number, string][] = [];
/** refused attempts: HTTP status and error code → count, and the slowest refusal */
const failures: Record<string, number> = {};
let slowestFailureMs = 0;
/** from the first refusal of a message until it was stored (the outage as a publisher saw it) */
let longestOutageMs = 0;
/** messages that needed more than one attempt */
let retried = 0;
let stopping = false;
/** after SIGTERM a message still refused is given up this long after (its server is gone for good) */
let giveUpAt = Number.POSITIVE_INFINITY;
process.on('SIGTERM', () => {
  stopping = true;
  giveUpAt = performance.now() + 15_000;
});
// A test that failed or was killed leaves no publisher retrying forever.
const parent = process.ppid;

for (let n = 0; !stopping; n++) {
  const ch = channels[n % channels.length] as string;
  const body = JSON.stringify({ ch, data: { p: name, n }, key: `${name}-${n}` });
  let firstFailure = 0;
  for (;;) {
    const t0 = performance.now();
    const res = await fetch(`${nodes[node % nodes.length]}/v1/publish`, {
      method: 'POST',
      body,
      signal: AbortSignal.timeout(10_000),
    }).catch((err: Error) => ({ status: 0, json: async () => ({ error: { code: err.name } }) }) as const);
    const answer = (await res.json().catch(() => ({}))) as { id?: number; error?: { code: string } };
    if (res.status === 200 && answer.id !== undefined) {
      published.push([answer.id, ch]);
      if (firstFailure) {
        longestOutageMs = Math.max(longestOutageMs, performance.now() - firstFailure);
        retried++;
      }
      break;
    }
    node++;
    const what = `${res.status} ${answer.error?.code ?? '?'}`;
    failures[what] = (failures[what] ?? 0) + 1;
    slowestFailureMs = Math.max(slowestFailureMs, performance.now() - t0);
    firstFailure ||= t0;
    if (process.ppid !== parent) process.exit(2);
    if (performance.now() > giveUpAt) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  if (pause) await new Promise((r) => setTimeout(r, pause));
}
process.stdout.write(`${JSON.stringify({ published, failures, slowestFailureMs, longestOutageMs, retried })}\n`);
