import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replayTrace } from './support/replayTrace.js';

/**
 * Every trace → the exact requests `pbxhook replay` prints (both 3CX variants of the lab config).
 * Goldens change only on purpose: `UPDATE_GOLDEN=1 npx vitest run test/20-golden-asterisk.test.ts`,
 * then review the diff.
 */
const DIRS = ['test/fixtures/asterisk', 'test/fixtures/asterisk-synth'];
const traces = DIRS.filter((d) => existsSync(d)).flatMap((d) =>
  readdirSync(d)
    .filter((f) => f.endsWith('.ami') || f.endsWith('.ami.gz'))
    .map((f) => join(d, f)),
);
const update = process.env['UPDATE_GOLDEN'] === '1';

describe('golden: Asterisk traces → 3CX webhooks', () => {
  it('has traces to check', () => {
    expect(traces.length).toBeGreaterThanOrEqual(11);
  });

  for (const trace of traces) {
    const name = basename(trace).replace(/\.ami(\.gz)?$/, '');
    const golden = join('test/golden/asterisk', `${name}.3cx.jsonl`);
    it(name, async () => {
      const { lines, summary } = await replayTrace(trace);
      const text = lines.join('\n') + '\n';
      if (update) {
        mkdirSync('test/golden/asterisk', { recursive: true });
        writeFileSync(golden, text);
      }
      expect(existsSync(golden), `${golden} missing: run with UPDATE_GOLDEN=1 and review it`).toBe(true);
      expect(text).toBe(readFileSync(golden, 'utf8'));
      expect(summary.callsOpen).toBe(0);
      expect(summary.framesSkipped).toBe(0);
      expect(summary.unknownEvents).toBe(0);
    });
  }
});
