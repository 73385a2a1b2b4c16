/**
 * Zod issues in plain words. The schema attaches its own wording only where a check needs
 * it (ranges, formats); everything else is phrased here, once, so every message reads
 * "expected X, got Y". Values of secret keys are never echoed back.
 */
import type { z } from 'zod';
import type { ConfigProblem } from './errors.js';

type RawIssue = z.core.$ZodRawIssue;
type Issue = z.core.$ZodIssue;
type Path = readonly PropertyKey[];

const SECRET_KEYS = new Set(['secret', 'password', 'token', 'signing_secret']);

const TYPE_WORDS: Record<string, string> = {
  number: 'a number',
  int: 'a whole number',
  string: 'a string',
  boolean: 'true or false',
  object: 'a mapping of keys',
  record: 'a mapping of keys',
  array: 'a list',
};

/** How a found value is shown after "got". */
export function describeInput(input: unknown): string {
  if (input === null) return 'an empty value';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping of keys';
  if (typeof input === 'string') return JSON.stringify(input.length > 60 ? `${input.slice(0, 57)}...` : input);
  return String(input);
}

function quoteList(values: readonly unknown[]): string {
  return values.map((v) => JSON.stringify(v)).join(', ');
}

/**
 * Collects the issues of one parse. Pass `errorMap` to `safeParse(..., { error })`; it
 * words the issues and remembers, for unknown keys, which keys were allowed there, because
 * the finished issue no longer carries the schema.
 */
export class IssueWording {
  private readonly allowedAt = new Map<string, readonly string[]>();

  readonly errorMap = (iss: RawIssue): string | undefined => {
    const path = iss.path ?? [];
    switch (iss.code) {
      case 'invalid_type':
        if (iss.input === undefined) return 'missing (this key is required)';
        // YAML reads `secret: 0123` as the number 123; quoting keeps it as written.
        if (iss.expected === 'string' && typeof iss.input === 'number') return 'expected a string (put it in quotes)';
        return `expected ${TYPE_WORDS[iss.expected] ?? iss.expected}`;
      case 'invalid_value':
        return iss.values.length === 1 ? `expected ${quoteList(iss.values)}` : `expected one of ${quoteList(iss.values)}`;
      case 'invalid_union':
        if (iss.discriminator !== undefined && iss.options !== undefined) {
          return `expected one of ${quoteList(iss.options as readonly unknown[])}`;
        }
        return 'does not match any allowed form';
      case 'unrecognized_keys': {
        const shape = (iss.inst as { _zod?: { def?: { shape?: object } } } | undefined)?._zod?.def?.shape;
        if (shape !== undefined) this.allowedAt.set(pathKey(path), Object.keys(shape));
        return 'unknown key';
      }
      case 'too_small':
        if (iss.origin === 'string' && Number(iss.minimum) === 1) return 'must not be empty';
        if (iss.origin === 'array') return `expected at least ${iss.minimum} items`;
        return `expected a number of at least ${iss.minimum}`;
      case 'too_big':
        if (iss.origin === 'array') return `expected at most ${iss.maximum} items`;
        return `expected a number of at most ${iss.maximum}`;
      default:
        return undefined;
    }
  };

  /** Finished issues → problems; `keyOf` renders a path (`pbx.port`, `[crm] url`). */
  problems(issues: readonly Issue[], file: string, keyOf: (path: Path) => string): ConfigProblem[] {
    const out: ConfigProblem[] = [];
    for (const issue of issues) {
      if (issue.code === 'unrecognized_keys') {
        const allowed = this.allowedAt.get(pathKey(issue.path)) ?? [];
        for (const key of issue.keys) {
          out.push({ file, key: keyOf([...issue.path, key]), message: unknownKeyMessage(key, allowed) });
        }
        continue;
      }
      out.push({ file, key: keyOf(issue.path), message: withInput(issue) });
    }
    return out;
  }
}

function pathKey(path: Path): string {
  return path.map(String).join('\u0000');
}

/** Appends ", got X" where the found value helps and is not a secret. */
function withInput(issue: Issue): string {
  const last = issue.path[issue.path.length - 1];
  if (typeof last === 'string' && SECRET_KEYS.has(last)) return issue.message;
  const input = (issue as { input?: unknown }).input;
  if (input === undefined) return issue.message;
  if (issue.code === 'invalid_union') {
    const found = (input as Record<string, unknown> | null)?.[String(issue.discriminator ?? '')];
    return found === undefined ? `${issue.message}, got nothing` : `${issue.message}, got ${describeInput(found)}`;
  }
  // Only sentences of the form "expected X" / "is not X" read well with the found value after them.
  if (!/^(expected|is not) /.test(issue.message)) return issue.message;
  return `${issue.message}, got ${describeInput(input)}`;
}

function unknownKeyMessage(key: string, allowed: readonly string[]): string {
  const guess = closest(key, allowed);
  if (guess !== undefined) return `unknown key (did you mean "${guess}"?)`;
  return allowed.length > 0 ? `unknown key; allowed here: ${allowed.join(', ')}` : 'unknown key';
}

/** camelCase written for snake_case, or a typo of at most two letters. */
function closest(key: string, allowed: readonly string[]): string | undefined {
  const snake = key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/-/g, '_').toLowerCase();
  const exact = allowed.find((a) => a === snake);
  if (exact !== undefined) return exact;
  let best: string | undefined;
  let bestDistance = 3;
  for (const a of allowed) {
    const d = editDistance(snake, a);
    if (d < bestDistance) [best, bestDistance] = [a, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost));
    }
    prev = row;
  }
  return prev[b.length]!;
}
