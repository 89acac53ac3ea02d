// Compiled glob matchers shared by the whole process: one closure per distinct pattern in use, not one per connection.
// The one cache the servers of a process share, on purpose: a matcher is a pure function of its pattern, so two
// servers (two namespaces) can never disagree over one, and sharing it costs nothing.
import { compileGlob, type Matcher } from '@durable-pubsub/client-sdk/protocol';

// Weak: a pattern stays only while something (a session, a grant, the bridge) holds its matcher, so
// patterns that clients chose and left do not pile up (the fuzz test's memory bound caught a strong cache).
const cache = new Map<string, WeakRef<Matcher>>();
const forget = new FinalizationRegistry<string>((pattern) => {
  if (!cache.get(pattern)?.deref()) cache.delete(pattern);
});

export function matcherFor(pattern: string): Matcher {
  const held = cache.get(pattern)?.deref();
  if (held) return held;
  const m = compileGlob(pattern);
  cache.set(pattern, new WeakRef(m));
  forget.register(m, pattern);
  return m;
}
