/**
 * Which part of an endpoint name `roles.extension_pattern` says is the extension (issue #12 item 5).
 * Hosted, multi-tenant PBXes name endpoints `NNNN-TT` (PJSIP/1001-12-0000002a: extension 1001 of
 * tenant 12); a capture group named `ext` picks the 1001 out: `^(?<ext>\d+)-\d+$`. Only that name
 * does: any other group, named or not, leaves the whole endpoint name the extension, as before groups
 * meant anything, so a pattern that already groups for alternation (`^(1|2)\d{2}$`) keeps "123".
 * RoleBook (src/core/roles.ts) reads the group from each match; this file only checks it at load.
 */

/** The name of the capture group that is the extension. */
export const EXTENSION_GROUP = 'ext';

const OPENING = `(?<${EXTENSION_GROUP}>`;

/**
 * The source of a valid regex between the parentheses of its group named ext, or undefined when it
 * has none. A scan, not a parser: it needs only to skip escapes and character classes and pair
 * parentheses (ECMA-262 22.2.1); a group name is unique within a pattern, so the first one is it.
 */
export function extensionGroupBody(source: string): string | undefined {
  const opens: boolean[] = []; // one per open parenthesis: is it the group named ext?
  let bodyAt = -1;
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') i++;
    else if (inClass) inClass = c !== ']';
    else if (c === '[') inClass = true;
    else if (c === '(') {
      const ext = source.startsWith(OPENING, i);
      if (ext) bodyAt = i + OPENING.length;
      opens.push(ext);
    } else if (c === ')' && opens.pop()) return source.slice(bodyAt, i);
  }
  return undefined;
}

/** True when a valid regex has capture groups of any name: one more empty branch shows them all. */
export function hasCaptureGroups(source: string): boolean {
  return (new RegExp(`(?:${source})|`).exec('')?.length ?? 1) > 1;
}

/**
 * Why the group named ext is unusable, or undefined. An empty extension id would name no one (and
 * would equal every other empty one), so a group that can match an empty string is a config error.
 * A group that takes no part in a match (an optional group, another branch of an alternation)
 * is not: RoleBook then keeps the whole endpoint name, as without the group.
 */
export function extensionGroupProblem(source: string): string | undefined {
  const body = extensionGroupBody(source);
  if (body === undefined || !matchesEmpty(body)) return undefined;
  return `the named group ${EXTENSION_GROUP} can match an empty string, which would give an empty extension; make it take at least one character, e.g. (?<${EXTENSION_GROUP}>\\d+)`;
}

function matchesEmpty(body: string): boolean {
  try {
    return new RegExp(`^(?:${body})$`).test('');
  } catch {
    return false; // a back reference out of the group, say: cannot be judged alone
  }
}
