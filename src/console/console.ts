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
  oldestUndelivered(now: number): Promise<Map<string, number>>;
}

/**
 * The call journal, fed by the pipeline from its first event: set up before the PBX is connected,
 * since a fast PBX can play a whole call before the ops server is listening.
 */
export function journalOf(cfg: Pick<Config, 'opsJournal'>, pipeline: Pipeline, store: Outbox['store']): CallJournal | undefined {
  const j = cfg.opsJournal ?? { calls: 500, keepMs: 3_600_000 };
  if (j.calls === 0) return undefined;
  const journal = new CallJournal(j.calls, j.keepMs, (endpoint, call) => store.laneRows({ pbx: store.pbx, lane: `${endpoint}:${call}` }));
  pipeline.onRendered = (e, reqs) => journal.record(e, reqs.map((r) => r.endpoint));
  pipeline.onHold = (h) => journal.hold(h.call, h.party, h.held, h.at);
  return journal;
}

export function startConsole(
  journal: CallJournal | undefined,
  parts: { pipeline: Pipeline; outbox: Outbox; endpoints(): readonly EndpointConfig[] },
  log: Logger,
): Console {
  const { store, worker } = parts.outbox;
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
      for (const e of parts.endpoints()) out.set(e.name, endpointState(worker.healthOf(e.name)));
      return out;
    },
    async oldestUndelivered(now) {
      const out = new Map<string, number>(parts.endpoints().map((e) => [e.name, 0]));
      for (const [name, createdAt] of await store.oldestUndelivered()) out.set(name, Math.max(0, (now - createdAt) / 1000));
      return out;
    },
  };
}
