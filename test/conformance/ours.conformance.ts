// The conformance suite against durable-pubsub's /v1/stream (a real redis-server, the server in process).
import { runConformanceTests } from '@durable-streams/server-conformance-tests';
import { describe } from 'vitest';
import { withServer } from '../support/env';

describe('durable-pubsub', () => {
  const ctx = withServer({ DPS_STREAM_LONG_POLL: '2000' });
  const config = {
    subscriptions: true,
    get baseUrl() {
      return ctx.server.url;
    },
  };
  runConformanceTests(config as { baseUrl: string; subscriptions: boolean });
});
