import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import type { SchemaName } from '../src/config/types.js';
import { replayTrace } from './support/replayTrace.js';

/**
 * Every trace → the exact requests `pbxhook replay` prints with every schema enabled
 * (config/all-schemas.example.yaml), one golden file per trace and schema.
 * Goldens change only on purpose: `UPDATE_GOLDEN=1 npx vitest run test/20-golden-asterisk.test.ts`
 * (or UPDATE_GOLDEN=<schema> for one schema's files), then review the diff.
 */
export const ALL_SCHEMAS = 'config/all-schemas.example.yaml';
const DIRS = ['test/fixtures/asterisk', 'test/fixtures/asterisk-synth'];
const traces = DIRS.filter((d) => existsSync(d)).flatMap((d) =>
  readdirSync(d)
    .filter((f) => f.endsWith('.ami') || f.endsWith('.ami.gz'))
    .map((f) => join(d, f)),
);
const update = process.env['UPDATE_GOLDEN'];
const cfg = loadConfig(ALL_SCHEMAS);
const schemaOf = new Map<string, SchemaName>(cfg.endpoints.map((e) => [e.name, e.schema]));
const schemas = [...new Set(schemaOf.values())];

describe('golden: Asterisk traces → every schema', () => {
  it('has traces to check', () => {
    expect(traces.length).toBeGreaterThanOrEqual(20);
  });

  for (const trace of traces) {
    const name = basename(trace).replace(/\.ami(\.gz)?$/, '');
    it(name, async () => {
      const { lines, summary } = await replayTrace(trace, cfg);
      expect(summary.callsOpen).toBe(0);
      expect(summary.framesSkipped).toBe(0);
      expect(summary.unknownEvents).toBe(0);
      for (const schema of schemas) {
        const mine = lines.filter((l) => schemaOf.get((JSON.parse(l) as { endpoint: string }).endpoint) === schema);
        const golden = join('test/golden/asterisk', `${name}.${schema}.jsonl`);
        const text = mine.length === 0 ? '' : mine.join('\n') + '\n';
        if (update === '1' || update === schema) {
          mkdirSync('test/golden/asterisk', { recursive: true });
          writeFileSync(golden, text);
        }
        expect(existsSync(golden), `${golden} missing: run with UPDATE_GOLDEN=1 and review it`).toBe(true);
        expect(text, golden).toBe(readFileSync(golden, 'utf8'));
      }
    });
  }
});
