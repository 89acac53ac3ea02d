// Redis glob matching (PSUBSCRIBE semantics, byte for byte), compiled once per pattern.

type Bytes = ArrayLike<number>;

const encoder = new TextEncoder();
const ASCII = /^[\x00-\x7f]*$/;

function toBytes(s: string): Bytes {
  if (!ASCII.test(s)) return encoder.encode(s);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

const NUL = -1000; // what C reads past the end of an sds string: matches no byte

const signed = (b: number): number => (b > 127 ? b - 256 : b);

/**
 * A faithful port of Redis 7's stringmatchlen (util.c), nocase off. Redis
 * matches bytes, so `?` is one byte of UTF-8, and odd corners (an
 * unterminated `[abc`, a reversed range `[z-a]`, `[a-]`) behave as Redis does.
 * `state.skip` is Redis's skipLongerMatches guard against exponential `*` runs.
 */
function matchAt(p: Bytes, pi: number, s: Bytes, si: number, state: { skip: boolean }): boolean {
  const plen = p.length;
  const slen = s.length;
  const at = (i: number): number => (i < plen ? (p[i] as number) : NUL);
  while (pi < plen && si < slen) {
    const c = p[pi] as number;
    if (c === 0x2a /* * */) {
      while (pi + 1 < plen && p[pi + 1] === 0x2a) pi++;
      if (pi + 1 === plen) return true;
      while (si < slen) {
        if (matchAt(p, pi + 1, s, si, state)) return true;
        if (state.skip) return false;
        si++;
      }
      state.skip = true;
      return false;
    }
    if (c === 0x3f /* ? */) {
      si++;
    } else if (c === 0x5b /* [ */) {
      pi++;
      const not = at(pi) === 0x5e; /* ^ */
      if (not) pi++;
      let match = false;
      const ch = s[si] as number;
      for (;;) {
        if (at(pi) === 0x5c /* \ */ && plen - pi >= 2) {
          pi++;
          if (at(pi) === ch) match = true;
        } else if (at(pi) === 0x5d /* ] */) {
          break;
        } else if (pi >= plen) {
          pi--;
          break;
        } else if (plen - pi >= 3 && at(pi + 1) === 0x2d /* - */) {
          // Redis compares ranges as C `char`, which is signed: bytes >= 0x80 are negative.
          let start = signed(at(pi));
          let end = signed(at(pi + 2));
          if (start > end) [start, end] = [end, start];
          pi += 2;
          const c = signed(ch);
          if (c >= start && c <= end) match = true;
        } else if (at(pi) === ch) {
          match = true;
        }
        pi++;
      }
      if (not) match = !match;
      if (!match) return false;
      si++;
    } else {
      if (c === 0x5c /* \ */ && plen - pi >= 2) pi++;
      if (at(pi) !== s[si]) return false;
      si++;
    }
    pi++;
    if (si === slen) {
      while (at(pi) === 0x2a) pi++;
      break;
    }
  }
  return pi >= plen && si === slen;
}

/** Does `channel` match the Redis glob `pattern`, exactly as PSUBSCRIBE decides? */
export function globMatch(pattern: string, channel: string): boolean {
  return matchAt(toBytes(pattern), 0, toBytes(channel), 0, { skip: false });
}

const SPECIAL = /[*?[\\]/;

export function isGlob(pattern: string): boolean {
  return SPECIAL.test(pattern);
}

/** Escape a literal so that a glob matches exactly it (used for key prefixes). */
export function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, '\\$&');
}

export type Matcher = (channel: string) => boolean;

/** Compile a pattern once; common shapes (literal, `prefix*`) skip the byte matcher. */
export function compileGlob(pattern: string): Matcher {
  if (!isGlob(pattern)) return (channel) => channel === pattern;
  const star = pattern.indexOf('*');
  if (star === pattern.length - 1 && !isGlob(pattern.slice(0, star))) {
    const prefix = pattern.slice(0, star);
    // Redis's `*` matches the empty rest, but no pattern matches the empty channel.
    return (channel) => channel.length > 0 && channel.startsWith(prefix);
  }
  const p = toBytes(pattern);
  return (channel) => matchAt(p, 0, toBytes(channel), 0, { skip: false });
}
