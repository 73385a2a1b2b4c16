/**
 * asterisk-manager's parsed objects → the AmiFrame the framer yields for the same bytes. The live
 * client no longer uses asterisk-manager (issue #14, README "PBX input: any bytes"); this mapping
 * stays as the record of how the two parsers differ (test/03).
 *
 * What asterisk-manager (lib/ami.js, ManagerReader) does to a message, and how it is undone:
 * - keys are trimmed and lower-cased: same as the framer;
 * - a repeated key becomes an array: its first element wins, as in the framer;
 * - every `Variable:`/`ChanVariable:` line becomes an entry of an object ({name: value}),
 *   so VarSet's lone `Variable: SIPDOMAIN` arrives as `{SIPDOMAIN: ''}`; the framer keeps
 *   a lone name in `fields.variable`. Lone names appear where a `Value:` header carries the
 *   value (VarSet, Getvar), so an empty entry of `variable` is taken as the lone name when
 *   the message has `value`, and as an empty variable otherwise;
 * - `Response: Follows` becomes {response: 'follows', content}: content holds the raw lines,
 *   parsed here with the framer's own function.
 *
 * Inputs the two cannot agree on, because asterisk-manager has already lost the information:
 * a line without `: ` (framer: `Key:value` accepted, garbage counted as malformed;
 * asterisk-manager: key = whole line, value ''), and the same variable name twice in one
 * message (asterisk-manager keeps the last, the framer the first).
 */
import type { AmiFrame } from './frame.js';
import { parseFollowsLines } from './framer.js';

export function fromManagerEvent(obj: Record<string, unknown>): AmiFrame {
  if (obj.response === 'follows' && typeof obj.content === 'string') {
    return { fields: parseFollowsLines(obj.content.split('\n')) };
  }
  const fields: Record<string, string> = Object.create(null);
  let vars: Record<string, string> | undefined;
  const hasValue = typeof obj.value === 'string' || Array.isArray(obj.value);
  for (const key of Object.keys(obj)) {
    // asterisk-manager keeps '' for a line like ": x"; the framer counts it as malformed.
    if (key === '') continue;
    const raw = obj[key];
    if ((key === 'variable' || key === 'chanvariable') && isRecord(raw)) {
      for (const [name, v] of Object.entries(raw)) {
        const value = String(v);
        if (value === '' && key === 'variable' && hasValue) {
          if (fields[key] === undefined) fields[key] = name;
          continue;
        }
        vars ??= Object.create(null) as Record<string, string>;
        if (vars[name] === undefined) vars[name] = value;
      }
      continue;
    }
    const first = Array.isArray(raw) ? raw[0] : raw;
    if (first !== undefined && first !== null && fields[key] === undefined) fields[key] = String(first);
  }
  return vars ? { fields, vars } : { fields };
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
