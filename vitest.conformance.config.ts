// The Durable Streams conformance suite, one file per server; run by test/integration/durable-streams-conformance.test.ts
// as child runs (its failures are counted there, not failed on: the reference server fails some of them too).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/conformance/*.conformance.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    maxWorkers: 1,
    // The suite has timing-based tests (long-polls, TTLs, SSE reads cut by a timer) and CI runs it beside other files:
    // a test that fails is tried again, for both servers alike.
    retry: 2,
    reporters: ['default'],
  },
});
