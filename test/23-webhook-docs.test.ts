import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { webhookDocs } from '../scripts/webhook-docs.js';

describe('docs/webhooks pages', () => {
  const pages = webhookDocs();
  it('exist for every schema source page', () => {
    expect(pages.size).toBeGreaterThanOrEqual(1);
  });
  for (const [path, text] of pages) {
    it(`${path} is generated from the current goldens (npx tsx scripts/webhook-docs.ts)`, () => {
      expect(readFileSync(path, 'utf8')).toBe(text);
    });
  }
});
