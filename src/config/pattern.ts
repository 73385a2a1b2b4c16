/**
 * Which part of an endpoint name `roles.extension_pattern` says is the extension (issue #12 item 5).
 * Hosted, multi-tenant PBXes name endpoints `NNNN-TT` (PJSIP/1001-12-0000002a: extension 1001 of
 * tenant 12); a capture group in the pattern picks the 1001 out. Precedence:
 *   1. a group named `ext`: `^(?<ext>\d+)-\d+$`;
 *   2. else the pattern's only unnamed capture group: `^(\d+)-\d+$`;
 *   3. else (no groups, or several and none named ext) the whole endpoint name, as before.
 * The loader resolves this once; RoleBook (src/core/roles.ts) reads the group from RoleConfig.
 */
import type { ExtensionGroup } from './types.js';

/** One capture group of a regex source, numbered as RegExp numbers them (named groups count too). */
export interface CaptureGroup {
  readonly number: number;
  readonly name: string | undefined;
  /** The source between the group's parentheses, without the `?<name>`. */
  readonly body: string;
}

interface Open {
  readonly bodyAt: number;
  readonly number: number | undefined;
  readonly name: string | undefined;
}

/**
 * The capture groups of a valid regex source, in order. A scan, not a parser: it needs only to tell
 * escapes, character classes, lookarounds and non-capturing groups from capture groups (ECMA-262
 * 22.2.1: `(` not followed by `?` captures; so does `(?<name>`, but not `(?<=` or `(?<!`).
 */
export function captureGroups(source: string): CaptureGroup[] {
  const found: CaptureGroup[] = [];
  const stack: Open[] = [];
  let count = 0;
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') i++;
    else if (inClass) inClass = c !== ']';
    else if (c === '[') inClass = true;
    else if (c === '(') stack.push(opening(source, i, () => ++count));
    else if (c === ')') {
      const open = stack.pop();
      if (open?.number !== undefined) found.push({ number: open.number, name: open.name, body: source.slice(open.bodyAt, i) });
    }
  }
  return found.sort((a, b) => a.number - b.number);
}

function opening(source: string, at: number, next: () => number): Open {
  if (source[at + 1] !== '?') return { bodyAt: at + 1, number: next(), name: undefined };
  const named = /^\?<([^=!>][^>]*)>/.exec(source.slice(at + 1));
  if (named) return { bodyAt: at + 1 + named[0].length, number: next(), name: named[1] };
  return { bodyAt: at + 1, number: undefined, name: undefined };
}

/** The group that names the extension, by the precedence above; undefined = the whole name. */
export function extensionGroupOf(source: string): CaptureGroup | undefined {
  const groups = captureGroups(source);
  const named = groups.find((g) => g.name === 'ext');
  if (named) return named;
  const unnamed = groups.filter((g) => g.name === undefined);
  return unnamed.length === 1 ? unnamed[0] : undefined;
}

/** What RoleConfig keeps of it: the name `ext`, or the unnamed group's number. */
export function extensionGroupKey(group: CaptureGroup | undefined): ExtensionGroup {
  if (group === undefined) return undefined;
  return group.name === 'ext' ? 'ext' : group.number;
}

/**
 * Why the extension group is unusable, or undefined. An empty extension id would name no one (and
 * would equal every other empty one), so a group that can match an empty string is a config error.
 * A group that takes no part in a match (an optional group, another branch of an alternation)
 * is not: RoleBook then keeps the whole endpoint name, as without groups.
 */
export function extensionGroupProblem(source: string): string | undefined {
  const group = extensionGroupOf(source);
  if (group === undefined || !matchesEmpty(group.body)) return undefined;
  const which = group.name === 'ext' ? 'the named group ext' : 'its capture group';
  const e = group.name === 'ext' ? '(?<ext>\\d+)' : '(\\d+)';
  return `${which} can match an empty string, which would give an empty extension; make it take at least one character, e.g. ${e}`;
}

function matchesEmpty(body: string): boolean {
  try {
    return new RegExp(`^(?:${body})$`).test('');
  } catch {
    return false; // a back reference out of the group, say: cannot be judged alone
  }
}
