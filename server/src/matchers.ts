// Compiled glob matchers shared by the whole process: one closure per distinct pattern, not one per connection.
import { compileGlob, type Matcher } from '@durable-pubsub/client-sdk/protocol';

/** distinct patterns kept at most; past it the cache starts over (matchers are pure, so only speed is lost) */
const MAX = 10_000;
const cache = new Map<string, Matcher>();

export function matcherFor(pattern: string): Matcher {
  let m = cache.get(pattern);
  if (!m) {
    if (cache.size >= MAX) cache.clear();
    m = compileGlob(pattern);
    cache.set(pattern, m);
  }
  return m;
}
