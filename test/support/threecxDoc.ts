import { readFileSync } from 'node:fs';

/** One row of a 3CX doc table: its description and the webhook it shows. */
export interface DocRow {
  readonly what: string;
  /** JSON rows: key → value (FileUrls as an array); urlencoded rows: the decoded pairs; a bare URL: { url }. */
  readonly fields: Record<string, string | string[]>;
  /** The keys in the order the doc writes them. */
  readonly keys: string[];
}

/**
 * Reads the tables of ../shared/vendor-docs/3cx-webhooksapi-ini.txt (copied into test/fixtures).
 * The doc's JSON is not always valid (`"Callerid": 05552221133"`), so values are read leniently.
 */
export function readThreeCxDoc(path = 'test/fixtures/vendor-docs/3cx-webhooksapi-ini.txt'): DocRow[][] {
  const tables: DocRow[][] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.startsWith('| Event | Webhook |')) {
      tables.push([]);
      continue;
    }
    if (!line.startsWith('| ') || line.startsWith('|---')) continue;
    const cells = line.split(' | ');
    const what = cells[0]!.slice(2).trim();
    const hook = cells.slice(1).join(' | ').replace(/\s*\|\s*$/, '').trim();
    tables.at(-1)!.push(parseHook(what, hook));
  }
  return tables;
}

function parseHook(what: string, hook: string): DocRow {
  const fields: Record<string, string | string[]> = {};
  const keys: string[] = [];
  if (hook.startsWith('{')) {
    const re = /"(\w+)"\s*:\s*(\[[^\]]*\]|"[^"]*"|[^,}]*")/g;
    for (const m of hook.matchAll(re)) {
      const key = m[1]!;
      const raw = m[2]!.trim();
      keys.push(key);
      fields[key] = raw.startsWith('[')
        ? [...raw.matchAll(/"([^"]*)"/g)].map((x) => x[1]!)
        : raw.replace(/^"|"$/g, '');
    }
  } else if (hook.startsWith('http')) {
    keys.push('url');
    fields['url'] = hook;
  } else {
    for (const pair of hook.split('&')) {
      const eq = pair.indexOf('=');
      const key = pair.slice(0, eq);
      keys.push(key);
      fields[key] = pair.slice(eq + 1);
    }
  }
  return { what, fields, keys };
}
