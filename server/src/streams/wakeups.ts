// Wakes a stream's long-polls and SSE readers on this process when it changes (here, or on any node: the ds scripts
// publish each change's path on the stream wake channel); readers also look again every `recheckMs` in case a wake
// was lost with the subscriber connection.
export class Wakeups {
  private readonly waiting = new Map<string, Set<() => void>>();

  constructor(private readonly recheckMs = 2000) {}

  /** Resolves when `path` changes here, after `ms`, or when `signal` aborts, whichever comes first. */
  wait(path: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiting.get(path);
      if (!set) this.waiting.set(path, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        set.delete(done);
        if (set.size === 0 && this.waiting.get(path) === set) this.waiting.delete(path);
        resolve();
      };
      const timer = setTimeout(done, Math.min(ms, this.recheckMs));
      signal?.addEventListener('abort', done);
      set.add(done);
    });
  }

  notify(path: string): void {
    const set = this.waiting.get(path);
    if (set) for (const done of [...set]) done();
  }
}
