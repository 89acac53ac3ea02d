// The connection state machine: which moves exist, and the per-state counts kept by counting them.
import { describe, expect, it } from 'vitest';
import { canMove, countMove, type SessionState, stateCounts } from './session-state';

const ALL: SessionState[] = ['hello', 'opening', 'catching-up', 'live', 'closed'];

describe('connection states', () => {
  it('has exactly the moves of the hand-over and nothing else', () => {
    const moves = ALL.flatMap((from) => ALL.filter((to) => canMove(from, to)).map((to) => `${from} -> ${to}`));
    expect(moves).toEqual([
      'hello -> opening',
      'hello -> closed',
      'opening -> catching-up',
      'opening -> closed',
      'catching-up -> live',
      'catching-up -> closed',
      'live -> catching-up',
      'live -> closed',
    ]);
  });

  it('counts open connections per state by their moves, and forgets closed ones', () => {
    const counts = stateCounts();
    countMove(counts, null, 'hello');
    countMove(counts, null, 'hello');
    countMove(counts, 'hello', 'opening');
    countMove(counts, 'opening', 'catching-up');
    countMove(counts, 'catching-up', 'live');
    countMove(counts, 'hello', 'closed');
    expect(counts).toEqual({ hello: 0, opening: 0, 'catching-up': 0, live: 1 });
    countMove(counts, 'live', 'closed');
    expect(counts).toEqual({ hello: 0, opening: 0, 'catching-up': 0, live: 0 });
  });
});
