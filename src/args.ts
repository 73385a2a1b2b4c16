/**
 * Command-line options, one spec per command (issue #13): each command has its own `--help`, and a
 * mistake in its options is one line naming the command's options, never Node's parseArgs text.
 */
import { parseArgs } from 'node:util';

/** sysexits.h EX_USAGE: "The command was used incorrectly." */
export const EX_USAGE = 64;

interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  readonly default?: string | boolean;
  /** What the value stands for in messages: `FILE`, `N`. */
  readonly value?: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** A usage mistake: `message` is the whole line after `pbxhook <command>: `. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly exitCode = EX_USAGE;
}

/** `-c, --config FILE, --send, -h, --help`: how a command's options are named in messages. */
export function optionList(options: OptionSpecs): string {
  return Object.entries(options)
    .map(([name, o]) => `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`)
    .join(', ');
}

/**
 * parseArgs in strict mode, its errors turned into one line each: the option that was wrong and
 * what the command takes. `command` names it in the message (`run`, `outbox retry`).
 */
export function parseCommandArgs<O extends OptionSpecs>(command: string, options: O, argv: readonly string[], maxPositionals = 0) {
  const config = Object.fromEntries(
    Object.entries(options).map(([name, { value: _value, ...o }]) => [name, o]),
  ) as { [K in keyof O]: Omit<O[K], 'value'> };
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: config, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(argsProblem(command, options, err));
  }
  const extra = parsed.positionals.slice(maxPositionals);
  if (extra.length > 0) {
    const what = maxPositionals === 0 ? 'takes no arguments' : `takes ${maxPositionals} argument${maxPositionals > 1 ? 's' : ''}`;
    throw new UsageError(`unexpected ${JSON.stringify(extra[0])}: ${command} ${what}; options: ${optionList(options)}`);
  }
  return parsed;
}

function argsProblem(command: string, options: OptionSpecs, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: string }).code;
  const takes = `${command} takes ${optionList(options)}`;
  // Node: "Unknown option '--conf'. To specify a positional argument starting with a '-', …"
  const unknown = /Unknown option '([^']+)'/.exec(message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown !== undefined) return `unknown option ${unknown}; ${takes}`;
  // Node: "Option '-c, --config <value>' argument missing", "Option '--send' does not take an argument"
  const option = /Option '(?:-\w, )?(--[\w-]+)/.exec(message)?.[1];
  if (option !== undefined) {
    const spec = options[option.slice(2)];
    if (spec?.type === 'string') return `${option} needs a value: ${option} ${spec.value ?? 'VALUE'}`;
    if (spec?.type === 'boolean') return `${option} takes no value`;
  }
  return `${message.split('. ')[0]}; ${takes}`;
}
