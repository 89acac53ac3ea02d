// frameId and frameChannel read the id and the channel straight from the bytes of a frame built by the publish script; the bridge follows the namespace's pub/sub mode.
import { EventEmitter } from 'node:events';
import { encodeMsg } from '@durable-pubsub/client-sdk/protocol';
import { describe, expect, it } from 'vitest';
import { Bridge, frameChannel, frameId } from './bridge';
import { keysFor } from './redis/keys';

describe('frameId', () => {
  it('reads the id of a script-built frame', () => {
    for (const id of [1, 42, 9007199254740991]) expect(frameId(Buffer.from(`{"op":"msg","id":${id},"ch":"c","data":1,"ts":2}`))).toBe(id);
  });

  it('reads the id of a frame from encodeMsg, at an offset in a larger buffer', () => {
    const frame = Buffer.from(`xx${encodeMsg(1234, 'c', { a: 1 }, 5)}`);
    expect(frameId(frame, 2)).toBe(1234);
  });
});

describe('frameChannel', () => {
  it('reads the channel of frames from encodeMsg and of script-built frames, escapes included', () => {
    for (const ch of ['c', 'orders.eu', 'a"b\\c', 'é/ü 日本', 'x\u2028y', '\u0001'])
      expect(frameChannel(Buffer.from(encodeMsg(7, ch, { a: 1 }, 5)))).toBe(ch);
    // cjson (FCALL dps_publish) escapes '/'
    expect(frameChannel(Buffer.from('{"op":"msg","id":3,"ch":"a\\/b","data":1,"ts":2}'))).toBe('a/b');
  });

  it('is null for a frame of any other shape', () => {
    for (const f of [
      '',
      '{"op":"msg","id":3}',
      '{"op":"msg","id":3,"ch":"unterminated',
      '{"op":"msg","id":3,"data":1,"ch":"c"}',
      'garbage',
    ])
      expect(frameChannel(Buffer.from(f))).toBeNull();
  });
});

/** A subscriber connection that records what the bridge asks of it, and is driven by the test. */
class FakeSubscriber extends EventEmitter {
  status = 'wait';
  readonly calls: string[] = [];
  private record(op: string, names: string[]): Promise<unknown> {
    this.calls.push(`${op} ${names.join(' ')}`);
    return Promise.resolve();
  }
  psubscribe = (...n: string[]) => this.record('psubscribe', n);
  punsubscribe = (...n: string[]) => this.record('punsubscribe', n);
  subscribe = (...n: string[]) => this.record('subscribe', n);
  unsubscribe = (...n: string[]) => this.record('unsubscribe', n);
  ssubscribe = (...n: string[]) => this.record('ssubscribe', n);
  sunsubscribe = (...n: string[]) => this.record('sunsubscribe', n);
  ping = () => Promise.resolve('hb');
  disconnect(reconnect = false): void {
    this.calls.push(`disconnect${reconnect ? ' to reconnect' : ''}`);
  }
  ready(): void {
    this.status = 'ready';
    this.emit('ready');
  }
  close(): void {
    this.status = 'reconnecting';
    this.emit('close');
  }
}

describe('Bridge pub/sub modes', () => {
  const keys = keysFor('m');
  const tick = () => new Promise((r) => setImmediate(r));

  it('follows a marker like a lost subscription: down at once, a new connection, the new path, then up', async () => {
    const sub = new FakeSubscriber();
    const bridge = new Bridge(sub, keys, 4, 'classic');
    const events: string[] = [];
    bridge.on('down', (why) => events.push(`down ${why}`));
    bridge.on('up', () => events.push('up'));
    bridge.on('switch', (mode, from, marker) => events.push(`switch ${from}->${mode}${marker ? ' by marker' : ''}`));
    sub.ready();
    await bridge.add({ offerLive() {}, offerGap() {} }, ['a.*']);
    expect(sub.calls).toEqual(['subscribe dps:{m}:pubsub-mode', `psubscribe ${keys.livePattern('a.*')}`]);
    // Markers of the mode in force, or of no mode, change nothing.
    sub.emit('messageBuffer', Buffer.from(keys.modeChannel), Buffer.from('{"op":"pubsub-mode","mode":"classic"}'));
    sub.emit('messageBuffer', Buffer.from(keys.modeChannel), Buffer.from('{"op":"pubsub-mode","mode":"loud"}'));
    expect([bridge.state, events]).toEqual(['up', ['up']]);

    sub.emit('messageBuffer', Buffer.from(keys.modeChannel), Buffer.from('{"op":"pubsub-mode","mode":"sharded"}'));
    expect([bridge.state, bridge.mode, events.slice(1), sub.calls.slice(2)]).toEqual([
      'down',
      'sharded',
      ['switch classic->sharded by marker', 'down switch'],
      ['disconnect to reconnect'],
    ]);
    let live = false;
    void bridge.ready().then(() => {
      live = true;
    });
    sub.close();
    await tick();
    expect([live, events.length]).toEqual([false, 3]);
    sub.ready();
    await tick();
    await tick();
    expect([live, bridge.state, events.slice(3), sub.calls.slice(3)]).toEqual([true, 'up', ['up'], ['ssubscribe dps:{m}:live']]);

    // Back: the marker comes on the shard channel; a read (`follow`) of the mode in force changes nothing.
    bridge.follow('sharded');
    sub.emit('smessageBuffer', Buffer.from(keys.liveShard), Buffer.from('{"op":"pubsub-mode","mode":"classic"}'));
    sub.close();
    sub.ready();
    await tick();
    await tick();
    expect([bridge.state, bridge.mode, events.slice(4), sub.calls.slice(4)]).toEqual([
      'up',
      'classic',
      ['switch sharded->classic by marker', 'down switch', 'up'],
      ['disconnect to reconnect', 'subscribe dps:{m}:pubsub-mode', `psubscribe ${keys.livePattern('a.*')}`],
    ]);
  });
});
