import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { tokensOf } from '../../src/deliver/auth.js';
import type { LifecycleEvent } from '../../src/core/lifecycle.js';
import { Pipeline } from '../../src/pipeline.js';
import { replayFile, requestLine, type ReplaySummary } from '../../src/replay.js';

export const LAB_CONFIG = 'config/lab.example.yaml';

export interface Replayed {
  readonly lines: string[];
  readonly events: LifecycleEvent[];
  readonly summary: ReplaySummary;
  readonly pipeline: Pipeline;
}

/** Replays a trace in-process exactly as `pbxhook replay` does, keeping the lifecycle events too. */
export async function replayTrace(trace: string, cfg: Config = loadConfig(LAB_CONFIG)): Promise<Replayed> {
  const pipeline = new Pipeline(cfg);
  const events: LifecycleEvent[] = [];
  pipeline.onLifecycleEvent = (e) => events.push(e);
  const tokens = tokensOf(cfg);
  const lines: string[] = [];
  const summary = await replayFile(trace, pipeline, (r) => lines.push(requestLine(r, tokens)));
  return { lines, events, summary, pipeline };
}

/** The body of each JSON-variant request, parsed. */
export function jsonBodies(lines: readonly string[], endpoint = 'crm-json'): Record<string, unknown>[] {
  return lines
    .map((l) => JSON.parse(l) as { endpoint: string; body: string })
    .filter((r) => r.endpoint === endpoint)
    .map((r) => JSON.parse(r.body) as Record<string, unknown>);
}
