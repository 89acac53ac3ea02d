// Wakes a stream's long-polls and SSE readers on this process when it changes; readers also look again every second
// (another node's appends: there is no cross-node signal for streams yet).
export class Wakeups {
  private readonly waiting = new Map<string, Set<() => void>>();

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
      const timer = setTimeout(done, Math.min(ms, 1000));
      signal?.addEventListener('abort', done);
      set.add(done);
    });
  }

  notify(path: string): void {
    const set = this.waiting.get(path);
    if (set) for (const done of [...set]) done();
  }
}
