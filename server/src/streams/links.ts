// A subscription's links (§6): which streams it follows, by glob or by name, each with its acked position.

export type LinkType = 'glob' | 'explicit';

export interface Link {
  glob: boolean;
  explicit: boolean;
  /** byte position acked (inclusive of everything before it) */
  acked: number;
}

/** `*` is one path segment, `**` zero or more. */
export function globMatcher(pattern: string): (path: string) => boolean {
  const segs = pattern.split('/');
  let re = '';
  let slash = false;
  segs.forEach((seg, i) => {
    if (seg === '**') {
      const last = i === segs.length - 1;
      re += last ? (slash ? '(?:/[^/]+)*' : '(?:[^/]+(?:/[^/]+)*)?') : slash ? '/(?:[^/]+/)*' : '(?:[^/]+/)*';
      slash = false;
    } else {
      re +=
        (slash ? '/' : '') +
        seg
          .split('*')
          .map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
          .join('[^/]*');
      slash = true;
    }
  });
  const compiled = new RegExp(`^${re}$`);
  return (path) => compiled.test(path);
}

export function linkType(l: Link): LinkType {
  return l.explicit ? 'explicit' : 'glob';
}
