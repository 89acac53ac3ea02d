// The fault and scale-out suite (`pnpm test:faults`): Redis, server nodes, Cluster and Sentinel killed for real.
// It also runs the core offline-replay and hand-over tests unchanged against a local 3-primary Redis Cluster.
import { defineConfig } from 'vitest/config';

const common = { testTimeout: 180_000, hookTimeout: 90_000, pool: 'forks' as const };

export default defineConfig({
  test: {
    maxWorkers: 1,
    reporters: ['default'],
    projects: [
      { test: { ...common, name: 'faults', include: ['test/faults/**/*.test.ts'] } },
      {
        test: {
          ...common,
          name: 'core-on-cluster',
          include: ['test/integration/replay.test.ts', 'test/integration/handover-race.test.ts'],
          env: { DPS_TEST_REDIS: 'cluster' },
        },
      },
    ],
  },
});
