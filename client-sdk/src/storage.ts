// Where a recipient's position {epoch, lastAckedId} is kept between page loads (pluggable).

export interface Position {
  epoch: string;
  lastAckedId: number;
}

export interface PositionStorage {
  get(key: string): Position | null;
  set(key: string, position: Position): void;
}

/** In memory: for Node, tests, or apps that keep positions themselves. */
export function memoryStorage(): PositionStorage {
  const map = new Map<string, Position>();
  return { get: (k) => map.get(k) ?? null, set: (k, p) => void map.set(k, { ...p }) };
}

/** `localStorage` (survives reloads); falls back to memory where there is none (Node, private modes). */
export function localStorageStorage(): PositionStorage {
  const ls = typeof localStorage === 'undefined' ? null : localStorage;
  if (!ls) return memoryStorage();
  return {
    get(k) {
      try {
        const v = JSON.parse(ls.getItem(k) ?? 'null') as Position | null;
        return v && typeof v.epoch === 'string' && Number.isSafeInteger(v.lastAckedId) ? v : null;
      } catch {
        return null;
      }
    },
    set(k, p) {
      try {
        ls.setItem(k, JSON.stringify(p));
      } catch {
        // Quota or privacy mode: the server's stored position still holds.
      }
    },
  };
}
