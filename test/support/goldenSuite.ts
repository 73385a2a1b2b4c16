import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { SchemaName } from '../../src/config/types.js';
import { replayTrace } from './replayTrace.js';

export interface GoldenSuite {
  readonly pbx: string;
  /** Folders of traces, and the file ending that marks one (`.ami`, `.esl`; `.gz` too). */
  readonly dirs: readonly string[];
  readonly extension: string;
  readonly config: string;
  /** Trace name → the config it replays with instead (a trace of a differently named PBX). */
  readonly configFor?: Readonly<Record<string, string>>;
  readonly golden: string;
  readonly atLeast: number;
}

/**
 * Every trace → the exact requests `pbxhook replay` prints with every schema enabled, one golden
 * file per trace and schema. Goldens change only on purpose: UPDATE_GOLDEN=1 (or =<schema>) on
 * the test file, then review the diff.
 */
export function goldenSuite(s: GoldenSuite): void {
  const ending = new RegExp(`\\${s.extension}(\\.gz)?$`);
  const traces = s.dirs.filter((d) => existsSync(d)).flatMap((d) =>
    readdirSync(d)
      .filter((f) => ending.test(f))
      .map((f) => join(d, f)),
  );
  const update = process.env['UPDATE_GOLDEN'];
  const cfg = loadConfig(s.config);
  const configs = new Map(Object.entries(s.configFor ?? {}).map(([trace, file]) => [trace, loadConfig(file)]));
  const schemaOf = new Map<string, SchemaName>(cfg.endpoints.map((e) => [e.name, e.schema]));
  const schemas = [...new Set(schemaOf.values())];

  describe(`golden: ${s.pbx} traces → every schema`, () => {
    it('has traces to check', () => {
      expect(traces.length).toBeGreaterThanOrEqual(s.atLeast);
    });

    for (const trace of traces) {
      const name = basename(trace).replace(ending, '');
      it(name, async () => {
        const { lines, summary } = await replayTrace(trace, configs.get(name) ?? cfg);
        expect(summary.callsOpen).toBe(0);
        expect(summary.framesSkipped).toBe(0);
        expect(summary.unknownEvents).toBe(0);
        expect(summary.orphanEvents).toBe(0);
        for (const schema of schemas) {
          const mine = lines.filter((l) => schemaOf.get((JSON.parse(l) as { endpoint: string }).endpoint) === schema);
          const golden = join(s.golden, `${name}.${schema}.jsonl`);
          const text = mine.length === 0 ? '' : mine.join('\n') + '\n';
          if (update === '1' || update === schema) {
            mkdirSync(s.golden, { recursive: true });
            writeFileSync(golden, text);
          }
          expect(existsSync(golden), `${golden} missing: run with UPDATE_GOLDEN=1 and review it`).toBe(true);
          expect(text, golden).toBe(readFileSync(golden, 'utf8'));
        }
      });
    }
  });
}
