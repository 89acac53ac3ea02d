// Entry point of `pnpm run server` and `pnpm start` (with DPS_DEMO=1).
import { serve } from './serve';

serve().catch((err) => {
  process.stderr.write(`durable-pubsub: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
