// A server busy for longer than half of DPS_REDIS_TIMEOUT keeps its Redis connections: an answer that came while it
// was busy is read before the connection is judged silent (it was the server's slowness, not Redis's).
import { commandConnection, connect, subscriberConnection } from '@durable-pubsub/server/src/redis/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, type TestRedis } from '../support/env';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.cleanup();
});

/**
 * Sends `command`, then holds the event loop for `ms` right after it was written (auto-pipelining writes in an
 * immediate; this one runs next to it): the answer waits unread past the socket timeout, whose timer runs before the
 * next read.
 */
function busyAfter(command: () => Promise<unknown>, ms: number): Promise<string> {
  return new Promise((resolve) =>
    setImmediate(() => {
      const sent = command();
      setImmediate(() => {
        const until = performance.now() + ms;
        while (performance.now() < until) {
          // the server's own work
        }
        sent.then(
          (r) => resolve(`answered ${String(r)}`),
          (err) => resolve(`failed: ${String(err)}`),
        );
      });
    }),
  );
}

describe('a busy server and its Redis connections', () => {
  it('the command and subscriber connections answer after the process was busy for twice their socket timeout', async () => {
    // DPS_REDIS_TIMEOUT 1000: ioredis destroys a connection that waited 500 ms for any byte.
    const command = commandConnection(redis.url, 1000);
    const sub = subscriberConnection(redis.url, undefined, 1000);
    const errors: string[] = [];
    command.on('error', (err) => errors.push(String(err)));
    sub.on('error', (err) => errors.push(String(err)));
    try {
      await connect(command);
      await connect(sub);
      expect(await busyAfter(() => command.echo('one'), 1000)).toBe('answered one');
      expect(await busyAfter(() => sub.ping('two'), 1000)).toBe('answered two');
      expect(await busyAfter(() => command.echo('three'), 1000)).toBe('answered three');
      expect(errors).toEqual([]);
      expect([command.status, sub.status]).toEqual(['ready', 'ready']);
    } finally {
      command.disconnect();
      sub.disconnect();
    }
  });
});
