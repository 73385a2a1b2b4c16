/**
 * Builds docs/webhooks/<schema>.md from the hand-written docs/webhooks/src/<schema>.md, the shared
 * delivery contract (docs/webhooks/src/_delivery.md, with the config schema's defaults filled in)
 * and the golden files: every example a CRM developer reads is a request pbxhook really produced.
 *   npx tsx scripts/webhook-docs.ts          write the pages
 *   test/23-webhook-docs.test.ts             fails when a page is out of date
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.js';
import { WEBHOOK_SCHEMAS, writeWebhookSchemas } from './webhook-schemas.js';

const SRC = 'docs/webhooks/src';
const OUT = 'docs/webhooks';
const GOLDEN = 'test/golden/asterisk';
/** The delivery contract, written once and inserted into every page. */
const DELIVERY = '_delivery.md';
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

/** `5 s`, `2 min`, `1 h`: how the contract writes a duration. */
export function humanDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round((s / 60) * 10) / 10} min`;
  return `${Math.round((s / 3600) * 10) / 10} h`;
}

/** The delivery contract every schema page carries, with the defaults a config without `retry:` or `delivery:` gets. */
export function deliveryContract(): string {
  const d = parseConfig('pbx: {type: freeswitch, password: x}', undefined, { yamlPath: 'defaults.yaml' }, {}).delivery;
  const total = d.schedule.reduce((a, b) => a + b, 0);
  const values: Record<string, string> = {
    timeout: humanDuration(d.timeoutMs),
    connect_timeout: humanDuration(d.connectTimeoutMs),
    concurrency: String(d.concurrency),
    schedule: d.schedule.map(humanDuration).join(', '),
    schedule_total: `${Math.round(total / 3_600_000)} h`,
    jitter: String(Math.round(d.jitter * 100)),
    retry_after_max: humanDuration(d.retryAfterMaxMs),
    pause_after: humanDuration(d.pauseAfterMs),
    probe_every: humanDuration(d.probeEveryMs),
  };
  return readFileSync(join(SRC, DELIVERY), 'utf8')
    .trimEnd()
    .replace(/\{\{(\w+)\}\}/g, (m, name: string) => {
      const v = values[name];
      if (v === undefined) throw new Error(`${DELIVERY}: unknown placeholder ${m}`);
      return v;
    });
}

const CARRIER = { json: 'a JSON body', form: 'a form-encoded body, decoded into its fields', query: "a GET's query string" } as const;

/** Where the page's JSON Schema is and which of its definitions describes which body. */
function schemaSection(schema: string): string[] {
  const spec = WEBHOOK_SCHEMAS[schema];
  if (!spec) throw new Error(`${schema}: no entry in scripts/webhook-schemas.ts`);
  const variants = Object.entries(spec.variants).map(([carrier, type]) => `\`${type}\` for ${CARRIER[carrier as keyof typeof CARRIER]}`);
  return ['## JSON Schema', '',
    `[\`${schema}.schema.json\`](${schema}.schema.json) (draft-07) describes every body of this page, one definition per`,
    `shape: ${variants.join('; ')}. It is generated from the TypeScript types pbxhook renders with`,
    '(`scripts/webhook-schemas.ts`), and every request of every recorded call, on Asterisk, FreePBX and',
    'FreeSWITCH, is checked against it. Its objects are closed (no property the vendor doc does not',
    'list), so a CRM can validate what it receives with any JSON Schema library.',
    ...(spec.variants.query ? ["(A GET's query string starts with whatever query the configured `url` itself has: leave that out.)"] : []),
    ''];
}

export function webhookDocs(): Map<string, string> {
  const pages = new Map<string, string>();
  const contract = deliveryContract();
  // Files starting with `_` are sections shared by every page, not pages.
  for (const file of readdirSync(SRC).filter((f) => f.endsWith('.md') && !f.startsWith('_')).sort()) {
    const schema = file.replace(/\.md$/, '');
    const parts = [readFileSync(join(SRC, file), 'utf8').trimEnd(), '', ...schemaSection(schema), contract, '',
      '## Examples from the recorded calls', '',
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
  writeWebhookSchemas();
}
