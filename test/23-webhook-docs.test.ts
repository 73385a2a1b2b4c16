import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { deliveryContract, humanDuration, webhookDocs } from '../scripts/webhook-docs.js';

describe('docs/webhooks pages', () => {
  const pages = webhookDocs();
  it('exist for every schema source page', () => {
    expect([...pages.keys()].sort()).toEqual(['3cx', 'petdesk', 'voip-request', 'voipappz', 'vxt'].map((s) => `docs/webhooks/${s}.md`));
  });
  for (const [path, text] of pages) {
    it(`${path} is generated from the current goldens (npx tsx scripts/webhook-docs.ts)`, () => {
      expect(readFileSync(path, 'utf8')).toBe(text);
    });
  }
});

/** Issue #13 item 5: every schema page tells the CRM developer how delivery behaves, from one source. */
describe('the delivery contract', () => {
  const contract = deliveryContract();
  const defaults = parseConfig('pbx: {type: freeswitch, password: x}', undefined, { yamlPath: 'd.yaml' }, {}).delivery;
  for (const path of webhookDocs().keys()) {
    it(`is in ${path}, word for word`, () => {
      expect(readFileSync(path, 'utf8')).toContain(contract);
    });
  }
  it('covers dedupe, signature, order, retries, permanent answers, timeout and the answer expected', () => {
    for (const needed of [
      'webhook-id', 'webhook-signature', 'webhook-timestamp', 'webhook-sequence', 'Standard Webhooks', 'whsec_',
      'Retry-After', '`2xx`', '`404 Not Found`', '`410 Gone`', '`3xx`', 'never followed', '`408`', '`429`', '`5xx`', 'retry_on',
    ]) expect(contract).toContain(needed);
  });
  it('states the config defaults it is built from', () => {
    expect(contract).toContain(`Answer within ${humanDuration(defaults.timeoutMs)}`);
    expect(contract).toContain(defaults.schedule.map(humanDuration).join(', '));
    expect(contract).toContain(`honoured up to ${humanDuration(defaults.retryAfterMaxMs)}`);
    expect(contract).not.toMatch(/\{\{\w+\}\}/);
  });
});
