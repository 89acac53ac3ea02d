// The public types are closed: `on` takes only the client's events with their payloads, error codes are one union (checked by tsc).
import { describe, expect, expectTypeOf, it } from 'vitest';
import { type Client, ClientError, type ClientErrorCode, type ClientEvents, type ErrorCode } from './index';

/** Never called: tsc checks what it may and may not say. */
function uses(client: Client): void {
  client.on('state', ({ oldState, newState }) => `${oldState} -> ${newState}`);
  client.on('gap', ({ ch, after, upTo }) => `${ch} ${after} ${upTo}`);
  client.on('error', (e) => e.code satisfies ClientErrorCode);
  // @ts-expect-error: no such event
  client.on('typo', () => {});
  // @ts-expect-error: a gap has no newState
  client.on('gap', (e) => e.newState);
  // @ts-expect-error: a handler of another event's payload
  client.on('reset', (e: ClientEvents['gap']) => e.ch);
  // @ts-expect-error: not an error code
  new ClientError('oops', 'no such code');
}

describe('public types', () => {
  it('name every event and every error code', () => {
    expectTypeOf<Parameters<Client['on']>[0]>().toEqualTypeOf<'state' | 'gap' | 'reset' | 'error'>();
    expectTypeOf<ClientEvents['error']['code']>().toEqualTypeOf<ClientErrorCode>();
    expectTypeOf<ClientError['code']>().toEqualTypeOf<ClientErrorCode>();
    expectTypeOf<ErrorCode>().toExtend<ClientErrorCode>();
    expectTypeOf<'handler' | 'bad_frame' | 'token' | 'no_websocket' | 'bad_url' | 'closed' | 'queue_full'>().toExtend<ClientErrorCode>();
    expect(typeof uses).toBe('function');
  });
});
