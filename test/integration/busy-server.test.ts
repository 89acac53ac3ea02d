// A server does not close for its own slowness: busy for longer than half of DPS_REDIS_TIMEOUT it keeps its Redis
// connections (an answer that came meanwhile is read before the connection is judged silent), and busy for longer
// than DPS_HELLO_TIMEOUT it keeps a client whose hello came in time.
import { commandConnection, connect, subscriberConnection } from '@durable-pubsub/server/src/redis/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, startTestServer, type TestRedis } from '../support/env';
import { RawClient } from '../support/raw-client';

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
        busy(ms);
        sent.then(
          (r) => resolve(`answered ${String(r)}`),
          (err) => resolve(`failed: ${String(err)}`),
        );
      });
    }),
  );
}

function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // the server's own work
  }
}

describe('a busy server', () => {
  it('keeps a client whose hello came in time, while it was busy for longer than DPS_HELLO_TIMEOUT', async () => {
    const server = await startTestServer(redis.url, { DPS_HELLO_TIMEOUT: '200' });
    try {
      // The server's session exists (its hello timer runs) once the client is open; the hello is sent, then the
      // process (the server's too: one process) is busy past the timer before it reads it.
      const c = await RawClient.connect(server.wsUrl);
      c.send({ op: 'hello', v: 1, recipient: 'busy-hello', subs: ['busy.*'] });
      busy(500);
      expect((await c.next('welcome')).recipient).toBe('busy-hello');
      c.close();
    } finally {
      await server.stop();
    }
  });

  it('the command and subscriber connections answer after the process was busy for longer than their socket timeout', async () => {
    // DPS_REDIS_TIMEOUT 1000: ioredis destroys a connection that waited 500 ms for any byte.
    const command = commandConnection(redis.url, 1000);
    const sub = subscriberConnection(redis.url, undefined, 1000);
    const errors: string[] = [];
    command.on('error', (err) => errors.push(String(err)));
    sub.on('error', (err) => errors.push(String(err)));
    try {
      await connect(command);
      await connect(sub);
      expect(await busyAfter(() => command.echo('one'), 600)).toBe('answered one');
      expect(await busyAfter(() => sub.ping('two'), 600)).toBe('answered two');
      expect(await busyAfter(() => command.echo('three'), 600)).toBe('answered three');
      expect(errors).toEqual([]);
      expect([command.status, sub.status]).toEqual(['ready', 'ready']);
    } finally {
      command.disconnect();
      sub.disconnect();
    }
  });
});
