// A publisher in its own process: POSTs batches at full speed, prints every [id, channel] as JSON at the end.
// usage: tsx publisher.ts <baseUrl> <total> <batch> <concurrency> <channel,channel,...>
export {};

const [base, totalArg, batchArg, concArg, chArg] = process.argv.slice(2);
const total = Number(totalArg);
const batch = Number(batchArg);
const channels = (chArg ?? '').split(',');
let next = 0;
const out: [number, string][] = [];
let failures = 0;

async function worker(): Promise<void> {
  while (next < total) {
    const n = Math.min(batch, total - next);
    next += n;
    const messages = Array.from({ length: n }, () => ({
      ch: channels[Math.floor(Math.random() * channels.length)] as string,
      data: { t: Date.now() },
    }));
    for (;;) {
      const res = await fetch(`${base}/v1/publish`, { method: 'POST', body: JSON.stringify({ messages }) }).catch(() => null);
      if (res?.status === 200) {
        const { ids } = (await res.json()) as { ids: number[] };
        for (const [i, id] of ids.entries()) out.push([id, (messages[i] as { ch: string }).ch]);
        break;
      }
      // Not stored (the tests here keep Redis up); count it and try again.
      failures++;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

await Promise.all(Array.from({ length: Number(concArg) }, worker));
process.stdout.write(`${JSON.stringify({ published: out.sort((a, b) => a[0] - b[0]), failures })}\n`);
