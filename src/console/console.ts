/**
 * The console wired to a running daemon: the call journal fed by the pipeline, the API handler
 * the ops server serves, and the endpoint figures /metrics exports (issue #16 item 6).
 */
import type { Logger } from 'pino';
import type { Config, EndpointConfig } from '../config/types.js';
import type { Outbox } from '../deliver/outbox.js';
import type { Pipeline } from '../pipeline.js';
import type { ConsoleHandler } from '../ops/server.js';
import { CallJournal } from './journal.js';
import { consoleRoutes } from './routes.js';
import { type ConsoleSources, endpointState } from './views.js';

export { CONSOLE_PAGE } from './page.js';

export interface Console {
  readonly handler: ConsoleHandler;
  readonly journal: CallJournal | undefined;
  endpointStates(): Map<string, string>;
  oldestUndelivered(now: number): Map<string, number>;
}

export function startConsole(
  cfg: Pick<Config, 'opsJournal'>,
  parts: { pipeline: Pipeline; outbox: Outbox; endpoints(): readonly EndpointConfig[] },
  log: Logger,
): Console {
  const { store, worker } = parts.outbox;
  const j = cfg.opsJournal ?? { calls: 500, keepMs: 3_600_000 };
  const journal = j.calls > 0 ? new CallJournal(j.calls, j.keepMs, (endpoint, call) => store.laneRows(`${endpoint}:${call}`)) : undefined;
  if (journal) parts.pipeline.onRendered = (e, reqs) => journal.record(e, reqs.map((r) => r.endpoint));
  const sources: ConsoleSources = { store, worker, endpoints: parts.endpoints };
  return {
    // The journal keeps the PBX's time (events' timestamps), so it is searched on the PBX's clock.
    handler: consoleRoutes(
      { ...sources, actions: { store, worker, log }, ...(journal ? { journal: { search: (q: string) => journal.search(q, parts.pipeline.pbxNow()) } } : {}) },
      log,
    ),
    journal,
    endpointStates() {
      const out = new Map<string, string>();
      for (const e of parts.endpoints()) out.set(e.name, endpointState(e, e.enabled ? worker.healthOf(e.name) : undefined));
      return out;
    },
    oldestUndelivered(now) {
      const owed = store.undeliveredByEndpoint();
      const out = new Map<string, number>(parts.endpoints().map((e) => [e.name, 0]));
      for (const [name, o] of owed) out.set(name, Math.max(0, (now - o.oldestCreatedAt) / 1000));
      return out;
    },
  };
}
