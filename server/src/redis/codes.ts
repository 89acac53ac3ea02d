// The negative codes the Lua scripts return instead of a position, named in one place and mapped by one function.

/** Every negative return code of every script (their headers say which each returns). */
export const ScriptCode = {
  /** the caller's epoch is not the log's: the log was lost, and an old position must not leak into the new one */
  epochGone: -1,
  /** the recipient, or this pattern set of it, was forgotten (unused for the TTL, or deleted), and is not re-created */
  forgotten: -2,
} as const;

export type Refusal = 'epoch-gone' | 'forgotten';

const REFUSALS = new Map<number, Refusal>([
  [ScriptCode.epochGone, 'epoch-gone'],
  [ScriptCode.forgotten, 'forgotten'],
]);

/**
 * What a script's negative code means, among the refusals `script` may return. Any other code is a script and its
 * caller disagreeing (a bug), never a state to carry on from.
 */
export function refusalOf<R extends Refusal>(script: string, code: number, expected: readonly R[]): { status: R } {
  const status = REFUSALS.get(code);
  if (status === undefined || !(expected as readonly Refusal[]).includes(status))
    throw new Error(`script ${script} returned ${code}, which its caller does not expect`);
  return { status: status as R };
}
