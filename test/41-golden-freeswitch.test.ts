import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import type { SchemaName } from '../src/config/types.js';
import { replayTrace } from './support/replayTrace.js';

/**
 * Every FreeSWITCH trace → the exact requests `pbxhook replay` prints with every schema enabled, as
 * test/20 does for Asterisk: config/freeswitch-lab.example.yaml is all-schemas.example.yaml (same
 * endpoints, names, people) with the FreeSWITCH lab's PBX and ring groups (`830@default`).
 * Goldens change only on purpose: `UPDATE_GOLDEN=1 npx vitest run test/41-golden-freeswitch.test.ts`
 * (or UPDATE_GOLDEN=<schema>), then review the diff.
 */
export const FREESWITCH_LAB = 'config/freeswitch-lab.example.yaml';
const GOLDEN = 'test/golden/freeswitch';
const DIRS = ['test/fixtures/freeswitch', 'test/fixtures/freeswitch-synth'];
const traces = DIRS.filter((d) => existsSync(d)).flatMap((d) =>
  readdirSync(d)
    .filter((f) => /\.esl(\.gz)?$/.test(f))
    .map((f) => join(d, f)),
);
const update = process.env['UPDATE_GOLDEN'];
const cfg = loadConfig(FREESWITCH_LAB);
const schemaOf = new Map<string, SchemaName>(cfg.endpoints.map((e) => [e.name, e.schema]));
const schemas = [...new Set(schemaOf.values())];

describe('golden: FreeSWITCH traces → every schema', () => {
  it('has traces to check', () => {
    expect(traces.length).toBeGreaterThanOrEqual(21);
  });

  for (const trace of traces) {
    const name = basename(trace).replace(/\.esl(\.gz)?$/, '');
    it(name, async () => {
      const { lines, summary } = await replayTrace(trace, cfg);
      expect(summary.callsOpen).toBe(0);
      expect(summary.framesSkipped).toBe(0);
      expect(summary.unknownEvents).toBe(0);
      for (const schema of schemas) {
        const mine = lines.filter((l) => schemaOf.get((JSON.parse(l) as { endpoint: string }).endpoint) === schema);
        const golden = join(GOLDEN, `${name}.${schema}.jsonl`);
        const text = mine.length === 0 ? '' : mine.join('\n') + '\n';
        if (update === '1' || update === schema) {
          mkdirSync(GOLDEN, { recursive: true });
          writeFileSync(golden, text);
        }
        expect(existsSync(golden), `${golden} missing: run with UPDATE_GOLDEN=1 and review it`).toBe(true);
        expect(text, golden).toBe(readFileSync(golden, 'utf8'));
      }
    });
  }
});
