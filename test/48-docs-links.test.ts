/**
 * Docs that stand alone (issue #13 item 5): every shipped doc refers only to files of this
 * repository that exist. A user's clone has nothing beside the repository (no `../shared/…`), and
 * the golden files are test data, not documentation: a doc shows their requests instead.
 *
 * Checked in every shipped doc (README.md, ARCHITECTURE.md, docs/**\/*.md, config/*,
 * webhooks.ini.example):
 * - Markdown links `[text](target)` that are not URLs or anchors resolve, from the doc's folder,
 *   to a file or folder inside the repository;
 * - repository paths written as text (`src/…`, `test/…`, `docs/…`, `config/…`, `scripts/…`,
 *   `systemd/…`, `bench/…`; `*` and `<name>` match any name; `test/40` names test/40-….test.ts) exist;
 * - a relative path starting with `../` never leaves the repository;
 * - nothing names `../shared`, the trace collection or `test/golden`.
 * Fenced code blocks of Markdown are examples of a user's own files (`/etc/pbxhook/…`,
 * `./webhooks.ini` beside the user's YAML), so only the last two rules apply inside them.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function filesUnder(dir: string, keep: (name: string) => boolean): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.posix.join(dir, e.name);
    if (e.isDirectory()) return filesUnder(rel, keep);
    return keep(e.name) ? [rel] : [];
  });
}

/** What an npm or .deb install ships for people to read. */
const SHIPPED_DOCS = [
  'README.md', 'ARCHITECTURE.md', 'webhooks.ini.example',
  ...filesUnder('docs', (n) => n.endsWith('.md')),
  ...filesUnder('config', () => true),
];

const FORBIDDEN: ReadonlyArray<readonly [RegExp, string]> = [
  [/\.\.\/shared\b/, '../shared is outside the repository'],
  [/\bshared\/(?:traces|vendor-docs)\b/, 'the trace collection is outside the repository: name the copy in test/fixtures'],
  [/\/work\//, 'a path of the development machine'],
  [/\btest\/golden\b/, 'the golden files are test data: show or describe their requests instead'],
];

const REPO_DIRS = ['src', 'test', 'docs', 'config', 'scripts', 'systemd', 'bench'];
/** A repository path written as text: starts at a line start, a space, a quote, a backtick or a bracket. */
const REPO_PATH = new RegExp(`(?<=^|[\\s\`'"(\\[])((?:${REPO_DIRS.join('|')})/[\\w.*<>{}/-]*)`, 'g');
const PARENT_PATH = /(?<=^|[\s`'"(\[])((?:\.\.\/)+[\w.*<>{}/-]*)/g;
const MD_LINK = /\]\(([^)\s]+)\)/g;

/** A path segment with `*`, `<name>` or `{name}` matches any entry of its folder that fits. */
function segmentPattern(seg: string): RegExp | undefined {
  if (!/[*<>{}]/.test(seg)) return undefined;
  const parts = seg.split(/(\*|<[^>]*>|\{[^}]*\})/).map((p, i) => (i % 2 === 1 ? '.*' : p.replace(/[.+?^$()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${parts.join('')}$`);
}

function exists(rel: string): boolean {
  if (/^test\/\d\d$/.test(rel)) return exists(`${rel}-*.test.ts`);
  let found = [ROOT];
  for (const seg of rel.split('/').filter((s) => s !== '' && s !== '.')) {
    const pattern = segmentPattern(seg);
    found = found.flatMap((dir) => {
      if (!pattern) return existsSync(path.join(dir, seg)) ? [path.join(dir, seg)] : [];
      if (!statSync(dir).isDirectory()) return [];
      return readdirSync(dir).filter((n) => pattern.test(n)).map((n) => path.join(dir, n));
    });
  }
  return found.length > 0;
}

const clean = (p: string): string => p.replace(/[.,:;]+$/, '');

/** Resolves `target` from the folder of `doc`; undefined when it leaves the repository. */
function fromDoc(doc: string, target: string): string | undefined {
  const rel = path.posix.normalize(path.posix.join(path.posix.dirname(doc), target));
  return rel.startsWith('../') || rel === '..' ? undefined : rel;
}

/** The doc's lines, each marked whether it is inside a fenced code block. */
function lines(doc: string, text: string): Array<{ n: number; line: string; fenced: boolean }> {
  const markdown = doc.endsWith('.md');
  let fenced = false;
  return text.split('\n').map((line, i) => {
    const fence = markdown && /^\s*```/.test(line);
    if (fence) fenced = !fenced;
    return { n: i + 1, line, fenced: fence || fenced };
  });
}

function problems(doc: string): string[] {
  const out: string[] = [];
  for (const { n, line, fenced } of lines(doc, readFileSync(path.join(ROOT, doc), 'utf8'))) {
    const at = `${doc}:${n}`;
    for (const [re, why] of FORBIDDEN) if (re.test(line)) out.push(`${at}: ${why}: ${line.trim()}`);
    for (const m of line.matchAll(PARENT_PATH)) {
      if (fromDoc(doc, clean(m[1]!)) === undefined) out.push(`${at}: ${m[1]} leaves the repository`);
    }
    if (fenced) continue;
    for (const m of line.matchAll(MD_LINK)) {
      const target = m[1]!.replace(/#.*$/, '');
      if (target === '' || /^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // an anchor, https:, mailto:
      const rel = fromDoc(doc, decodeURI(target));
      if (rel === undefined) out.push(`${at}: link ${m[1]} leaves the repository`);
      else if (!exists(rel)) out.push(`${at}: link ${m[1]}: ${rel} does not exist`);
    }
    for (const m of line.matchAll(REPO_PATH)) {
      const rel = clean(m[1]!);
      if (!exists(rel)) out.push(`${at}: ${rel} does not exist in the repository`);
    }
  }
  return out;
}

describe('shipped docs refer only to files of the repository', () => {
  it('the list of shipped docs covers README, ARCHITECTURE, docs/, config/ and the ini example', () => {
    expect(SHIPPED_DOCS).toEqual(expect.arrayContaining(['README.md', 'ARCHITECTURE.md', 'webhooks.ini.example',
      'docs/webhooks/3cx.md', 'docs/webhooks/src/3cx.md', 'config/pbxhook.example.yaml']));
  });
  for (const doc of SHIPPED_DOCS) {
    it(doc, () => {
      expect(problems(doc)).toEqual([]);
    });
  }
  it('the checker itself finds what it must', () => {
    expect(exists('test/fixtures/asterisk/README.md')).toBe(true);
    expect(exists('src/emit/<schema>.ts')).toBe(true);
    expect(exists('test/fixtures/asterisk*/')).toBe(true);
    expect(exists('src/emit/nope.ts')).toBe(false);
    expect(fromDoc('docs/webhooks/3cx.md', '../../README.md')).toBe('README.md');
    expect(fromDoc('docs/webhooks/3cx.md', '../../../shared/x')).toBeUndefined();
  });
});
