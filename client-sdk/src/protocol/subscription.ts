// A recipient's pattern set as one canonical string: the key of its durable position (PROTOCOL.md "subscription").

/**
 * The same set gives the same key whatever the order or repetitions of its patterns: the JSON array of
 * its distinct patterns in code-unit order. Server (positions in Redis) and SDK (positions in storage) agree.
 */
export function patternSetKey(patterns: Iterable<string>): string {
  return JSON.stringify([...new Set(patterns)].sort());
}
