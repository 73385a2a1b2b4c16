/**
 * The webhooks ini file: one `[name]` section per endpoint. Values are decoded by the
 * `ini` package, but it forgives too much for a config file — a duplicate key or section
 * silently wins, a bare `;` or `#` inside a value cuts it short (`?a=1;b=2` becomes
 * `?a=1`), a dotted section nests — so a line pass here turns each of those into a problem.
 */
import { parseIni } from './libs.js';
import { type ConfigProblem, iniKey } from './errors.js';
import { ENDPOINT_NAME } from './schema.js';

export interface IniSections {
  /** Raw key → value per section, in file order; only sections with usable names. */
  readonly sections: ReadonlyMap<string, Readonly<Record<string, unknown>>>;
  readonly problems: readonly ConfigProblem[];
}

// The line grammar of the ini package (lib/ini.js decode), so both passes agree on lines.
const SECTION = /^\[([^\]]*)\]\s*$/;
const KEY_VALUE = /^([^=]+)(=(.*))?$/;
const COMMENT_OR_BLANK = /^\s*([;#]|$)/;

export function readIniSections(text: string, file: string): IniSections {
  const problems: ConfigProblem[] = [];
  const add = (key: string, message: string) => problems.push({ file, key, message });
  const keysBySection = new Map<string, Set<string>>();
  let current: Set<string> | undefined;
  let currentName = '';

  text.split(/\r?\n/).forEach((line, index) => {
    const lineNo = `line ${index + 1}`;
    if (COMMENT_OR_BLANK.test(line)) return;
    const section = SECTION.exec(line);
    if (section) {
      currentName = section[1]!.trim();
      if (!ENDPOINT_NAME.test(currentName)) {
        add(lineNo, `section name [${currentName}] must be letters, digits, "-" or "_" (it names the endpoint)`);
        current = new Set(); // keys below still belong to it, but it is not used
        return;
      }
      if (keysBySection.has(currentName)) add(iniKey(currentName), `section appears twice (at ${lineNo} again)`);
      current = keysBySection.get(currentName) ?? new Set();
      keysBySection.set(currentName, current);
      return;
    }
    if (line.trimStart().startsWith('[')) {
      add(lineNo, 'malformed section header; write it as [name] with comments on their own line');
      return;
    }
    const pair = KEY_VALUE.exec(line);
    const key = pair?.[1]?.trim() ?? '';
    if (pair?.[2] === undefined) {
      add(lineNo, `expected "key = value", got ${JSON.stringify(line.trim())}`);
      return;
    }
    if (current === undefined) {
      add(lineNo, `key ${JSON.stringify(key)} is outside any [section]; every key belongs to an endpoint section`);
      return;
    }
    if (!ENDPOINT_NAME.test(currentName)) return;
    if (current.has(key)) add(iniKey(currentName, key), `set twice (again at ${lineNo})`);
    current.add(key);
    const cut = commentCut(pair[3] ?? '');
    if (cut !== undefined) {
      add(
        iniKey(currentName, key),
        `contains "${cut}", which starts a comment in ini files; put the whole value in double quotes or write \\${cut}`,
      );
    }
  });

  const parsed = parseIni(text) as Record<string, unknown>;
  const sections = new Map<string, Record<string, unknown>>();
  for (const name of keysBySection.keys()) {
    const value = parsed[name];
    sections.set(name, keyValues(value));
  }
  return { sections, problems };
}

/** A section's own keys; plain objects inside it are dotted sections (`[crm.b]`), reported above. */
function keyValues(section: unknown): Record<string, unknown> {
  if (typeof section !== 'object' || section === null) return {};
  const own = Object.entries(section).filter(([, v]) => typeof v !== 'object' || v === null || Array.isArray(v));
  return Object.fromEntries(own);
}

/**
 * The `;` or `#` that would silently end an unquoted value mid-word (`?a=1;b=2`,
 * `/#/hook`), if any. After a space it reads as an intended trailing comment and is left be.
 */
function commentCut(rawValue: string): string | undefined {
  const value = rawValue.trim();
  if (/^(".*"|'.*')$/.test(value)) return undefined;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\') i++;
    else if ((c === ';' || c === '#') && i > 0 && !/\s/.test(value[i - 1]!)) return c;
    else if (c === ';' || c === '#') return undefined;
  }
  return undefined;
}
