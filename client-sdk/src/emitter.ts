// A minimal typed event emitter (no dependency on Node's or the DOM's): `on` takes only the names of the event map.

export class Emitter<Events extends object> {
  readonly #handlers: { [K in keyof Events]?: Set<(e: Events[K]) => void> } = {};

  on<K extends keyof Events>(event: K, handler: (e: Events[K]) => void): () => void {
    let set = this.#handlers[event];
    if (!set) this.#handlers[event] = set = new Set();
    set.add(handler);
    return () => set.delete(handler);
  }

  protected emit<K extends keyof Events>(event: K, e: Events[K]): void {
    for (const h of this.#handlers[event] ?? []) {
      try {
        h(e);
      } catch (err) {
        // A listener's bug must not break delivery; surface it where the app can see it.
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
}
