import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { SchemaName } from '../../src/config/types.js';
import type { LifecycleEvent } from '../../src/core/lifecycle.js';
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
 * What must hold of every story whatever the goldens say (issue #12): a leg a phone answered is
 * answered, and so is a call anyone answered; no route is named `s`; no Local channel appears
 * where a user or a number belongs; every call's caller is known from its first event on.
 */
function storyHolds(events: readonly LifecycleEvent[], lines: readonly string[]): void {
  for (const e of events) {
    if (e.type === 'message') continue;
    const { call } = e;
    const where = `${call.id} ${e.type}`;
    if (e.type === 'call.ended') {
      for (const leg of call.legs) if (leg.answeredAt !== undefined) expect(leg.disposition, `${where}: leg ${leg.channel}`).toBe('answered');
      if (call.segments.length > 0) expect(call.disposition, where).toBe('answered');
    }
    for (const r of call.routes) expect(r.number, where).not.toMatch(/^(s|t|i|h)$/);
    for (const leg of call.legs) expect(leg.party.kind, where).not.toBe('local');
    for (const seg of call.segments) expect(seg.user, where).not.toMatch(/^Local\//);
    // Nothing is told of a call before its direction and caller are (a click-to-call rings its own phone first).
    if (!call.clickToCall) expect(call.directionKnown, where).toBe(true);
    if (call.directionKnown && call.direction !== 'outbound') expect(call.customerNumber, where).not.toBe('');
  }
  for (const l of lines) expect(l).not.toMatch(/Local\//);
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
        const { lines, summary, events } = await replayTrace(trace, configs.get(name) ?? cfg);
        storyHolds(events, lines);
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
