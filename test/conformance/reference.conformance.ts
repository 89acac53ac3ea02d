// The conformance suite against the reference server (@durable-streams/server), for the side-by-side count.
import { DurableStreamTestServer } from '@durable-streams/server';
import { runConformanceTests } from '@durable-streams/server-conformance-tests';
import { afterAll, beforeAll, describe } from 'vitest';

describe('reference server', () => {
  const config = { baseUrl: '', subscriptions: true };
  let server: DurableStreamTestServer;
  beforeAll(async () => {
    server = new DurableStreamTestServer({ port: 0, host: '127.0.0.1', longPollTimeout: 2_000 });
    config.baseUrl = await server.start();
  });
  afterAll(() => server.stop());
  runConformanceTests(config);
});
