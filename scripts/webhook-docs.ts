/**
 * Builds docs/webhooks/<schema>.md from the hand-written docs/webhooks/src/<schema>.md and the
 * golden files: every example a CRM developer reads is a request pbxhook really produced.
 *   npx tsx scripts/webhook-docs.ts          write the pages
 *   test/23-webhook-docs.test.ts             fails when a page is out of date
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const SRC = 'docs/webhooks/src';
const OUT = 'docs/webhooks';
const GOLDEN = 'test/golden/asterisk';
/** Scenarios in the order a reader meets them; load is too long to print. */
const ORDER = [
  'in-queue-answered', 'in-queue-missed', 'in-queue-abandoned', 'in-queue-blind-transfer', 'in-queue-blind-transfer-refer',
  'in-queue-attended-transfer', 'in-queue-attended-transfer-refer', 'in-ringgroup-answered', 'in-ringgroup-missed',
  'in-ringgroup2-answered', 'in-ringgroup2-missed', 'in-voicemail', 'in-busy', 'internal', 'out-answered',
  'out-missed', 'out-caller-cancel', 'out-click-to-call', 'in-message',
];

interface Line {
  endpoint: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

function pretty(r: Line): string {
  const type = r.headers['content-type'] ?? '';
  let body = r.body;
  if (type.startsWith('application/json')) body = JSON.stringify(JSON.parse(r.body), null, 2);
  else if (type.startsWith('application/x-www-form-urlencoded')) body = [...new URLSearchParams(r.body)].map(([k, v]) => `${k}=${v}`).join('\n');
  const head = `${r.method} ${r.url}   [${r.endpoint}]${type ? `   ${type}` : ''}`;
  return body === '' ? head : `${head}\n${body}`;
}

export function webhookDocs(): Map<string, string> {
  const pages = new Map<string, string>();
  for (const file of readdirSync(SRC).filter((f) => f.endsWith('.md')).sort()) {
    const schema = file.replace(/\.md$/, '');
    const parts = [readFileSync(join(SRC, file), 'utf8').trimEnd(), '', '## Examples from the recorded calls', '',
      'The requests pbxhook sends for each recorded call, replayed with `config/all-schemas.example.yaml`:',
      'the real Asterisk captures of `test/fixtures/asterisk/` (its README says what happened in each call)',
      'and the scenarios generated in `test/fixtures/asterisk-synth/`. Bodies are decoded for reading; the',
      "test suite's golden files hold the exact bytes, and `scripts/webhook-docs.ts` writes this section from",
      'them, so it cannot drift.', ''];
    for (const scenario of ORDER) {
      const golden = join(GOLDEN, `${scenario}.${schema}.jsonl`);
      if (!existsSync(golden)) continue;
      const lines = readFileSync(golden, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line);
      parts.push(`### ${scenario}`, '');
      if (lines.length === 0) {
        parts.push('Nothing is sent.', '');
        continue;
      }
      parts.push('```', lines.map(pretty).join('\n\n'), '```', '');
    }
    pages.set(join(OUT, file), parts.join('\n'));
  }
  return pages;
}

if (process.argv[1]?.endsWith('webhook-docs.ts')) {
  for (const [path, text] of webhookDocs()) writeFileSync(path, text);
}
