// Reads the docs for the doc test: fenced code blocks and what their info strings ask, expected output, headings, links.
import { readdirSync, readFileSync } from 'node:fs';

export const ROOT = new URL('../../', import.meta.url).pathname;

/** README.md and every docs/*.md, as paths from the repository root. */
export function docPages(): string[] {
  const docs = readdirSync(`${ROOT}docs`).filter((f) => f.endsWith('.md'));
  return ['README.md', ...docs.sort().map((f) => `docs/${f}`)];
}

/** Languages the doc test can run; `text` is a picture or a template, not code. */
export const RUNNABLE = ['sh', 'ts', 'js', 'python'] as const;
export type Lang = (typeof RUNNABLE)[number];

/** What an info string asks of its block. */
export type Kind =
  | { kind: 'run'; lang: Lang; ownPort: boolean }
  | { kind: 'no-run'; reason: string }
  | { kind: 'excerpt'; of: string }
  | { kind: 'text' }
  | { kind: 'bad'; problem: string };

export type Block = Kind & {
  page: string;
  /** 1-based line of the opening fence */
  line: number;
  info: string;
  code: string;
};

/**
 * What an info string asks:
 *   `ts run`, `js run`, `sh run`, `python run`   run by the doc test (`own-port` after `run`: 8080 is a port of the
 *                                                block's own, not the page's test server)
 *   `<lang> no-run: <reason>`                     not run here; the reason says what covers it
 *   `<lang> excerpt <path>`                       lines of that file, in order (the file is run by its own test)
 *   `text`                                        not code: a picture, a transcript, a template
 */
export function classify(info: string): Kind {
  const [lang = '', ...rest] = info.split(/\s+/).filter(Boolean);
  const tail = rest.join(' ');
  if (!lang) return { kind: 'bad', problem: 'a fenced block without a language: say `text`, or what runs it' };
  // CommonMark: a backtick fence's info string has no backticks; with one, the line is not a fence at all.
  if (info.includes('`')) return { kind: 'bad', problem: 'a backtick in the info string makes it no fence (CommonMark)' };
  if (lang === 'text') return tail ? { kind: 'bad', problem: '`text` takes nothing after it' } : { kind: 'text' };
  const noRun = /^no-run:\s*(\S.*)$/.exec(tail);
  if (noRun) return { kind: 'no-run', reason: noRun[1] as string };
  const excerpt = /^excerpt\s+(\S+)$/.exec(tail);
  if (excerpt) return { kind: 'excerpt', of: excerpt[1] as string };
  const run = /^run(\s+own-port)?$/.exec(tail);
  if (run) {
    if (!(RUNNABLE as readonly string[]).includes(lang)) return { kind: 'bad', problem: `the doc test cannot run \`${lang}\`` };
    return { kind: 'run', lang: lang as Lang, ownPort: Boolean(run[1]) };
  }
  return { kind: 'bad', problem: `\`${info}\`: neither \`run\`, \`no-run: <reason>\`, \`excerpt <path>\` nor \`text\`` };
}

/** Every fenced block of a page, with its content dedented by its fence's indentation (blocks inside list items). */
export function blocks(page: string, text = readFileSync(ROOT + page, 'utf8')): Block[] {
  const out: Block[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})(.*)$/.exec(lines[i] as string);
    if (!open) continue;
    const [, indent = '', fence = '', info = ''] = open;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j] as string;
      if (fenceAfter(l, fence) === null) break;
      body.push(l.startsWith(indent) ? l.slice(indent.length) : l.trimStart());
    }
    out.push({ page, line: i + 1, info: info.trim(), code: body.join('\n'), ...classify(info.trim()) });
    i = j;
  }
  return out;
}

/** The output a block promises: `// → text` (ts, js) or `# → text` (sh, python), in order; `…` stands for anything. */
export function expectations(code: string): RegExp[] {
  const out: RegExp[] = [];
  for (const line of code.split('\n')) {
    const m = /(?:\/\/|#) → (.*)$/.exec(line);
    if (m) out.push(new RegExp((m[1] as string).trim().split('…').map(escapeRegExp).join('.*?')));
  }
  return out;
}
const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Where in `output` the expectations stop matching, in order: -1 when all of them match. */
export function firstUnmet(output: string, expected: RegExp[]): number {
  let at = 0;
  for (let i = 0; i < expected.length; i++) {
    const re = new RegExp((expected[i] as RegExp).source, 'g');
    re.lastIndex = at;
    const m = re.exec(output);
    if (!m) return i;
    at = m.index + m[0].length;
  }
  return -1;
}

/** GitHub's anchors for a page's headings (lowercase, punctuation dropped, spaces to hyphens, repeats numbered). */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fence: string | null = null;
  for (const line of text.split('\n')) {
    fence = fenceAfter(line, fence);
    if (fence) continue;
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const base = (h[1] as string)
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n ? `${base}-${n}` : base);
  }
  return out;
}

/** The relative links of a page (`[text](target)`, outside code), with their line numbers. */
export function relativeLinks(text: string): { line: number; target: string }[] {
  const out: { line: number; target: string }[] = [];
  let fence: string | null = null;
  text.split('\n').forEach((line, i) => {
    const wasIn = fence;
    fence = fenceAfter(line, fence);
    if (wasIn) return;
    if (fence) return;
    for (const m of line.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1] as string;
      if (!/^[a-z]+:/i.test(target)) out.push({ line: i + 1, target });
    }
  });
  return out;
}

/** The fence open after `line`, given the one open before it (null: none). */
function fenceAfter(line: string, open: string | null): string | null {
  const f = /^\s*(`{3,}|~{3,})(.*)$/.exec(line);
  if (!f) return open;
  if (!open) return f[1] as string;
  return (f[1] as string).startsWith(open) && !(f[2] as string).trim() ? null : open;
}
