import type { Config, EndpointConfig } from '../config/types.js';
import type { Outbox } from '../deliver/outbox.js';
import type { OutboxRow } from '../deliver/store.js';
import type { Pipeline } from '../pipeline.js';
import { viewOf } from '../core/model.js';
import type { Health } from './server.js';
import type { MetricSources } from './metrics.js';

/** What the daemon's parts are, for the ops endpoints to read. */
export interface DaemonParts {
  readonly cfg: Pick<Config, 'pbx' | 'outbox'>;
  readonly pipeline: Pipeline;
  readonly outbox: Outbox;
  pbxConnected(): boolean;
  /**
   * `connecting` until the first login, `connected`, or `disconnected` while a lost one is retried;
   * `standby` while another daemon holds this PBX's lease and this one does not connect at all.
   */
  pbxState(): PbxState;
  /** Frames whose handling threw, logged and skipped. */
  frameErrors(): number;
  /** PBX input the live client dropped unread, by reason (`oversized`, `desync`). */
  inputSkipped?(): Readonly<Record<string, number>>;
  /** Endpoint → outcome → attempts (filled by the outbox worker's onAttempt). */
  readonly attempts: ReadonlyMap<string, Readonly<Record<string, number>>>;
  /** The endpoints as configured now (a reload changes them). */
  endpoints(): readonly EndpointConfig[];
  /** `standby` while another daemon holds this PBX's lease (issue #17 item 3); absent = active. */
  role?(): Role;
  /** What a standby waits for, as its log line says it (src/fleet/lease.ts waitingFor). */
  waitingFor?(): string;
}

export type PbxState = 'connecting' | 'connected' | 'disconnected' | 'standby';
type Role = 'active' | 'standby';

/** The role, and what a standby waits for, as /healthz and /status.json both say them. */
function roleOf(d: DaemonParts): { role: Role; lease?: string } {
  const role = d.role?.() ?? 'active';
  const waiting = role === 'standby' ? d.waitingFor?.() : undefined;
  return { role, ...(waiting !== undefined ? { lease: waiting } : {}) };
}

export function metricSources(d: DaemonParts): MetricSources {
  return {
    pbxConnected: () => d.pbxConnected(),
    eventsByType: () => d.pipeline.eventsByType,
    framesSkipped: () => ({
      oversized: 0,
      ...d.inputSkipped?.(),
      unknown: d.pipeline.ami.stats.unknown + d.pipeline.esl.stats.unknown,
      undecodable: d.pipeline.esl.stats.undecodable,
      no_channel: d.pipeline.esl.stats.noChannel,
      failed: d.frameErrors(),
      orphan: d.pipeline.tracker.stats.orphanEvents,
    }),
    calls: () => {
      const t = d.pipeline.tracker;
      return { live: t.liveCalls, started: t.stats.callsStarted, ended: t.stats.callsEnded, timedOut: t.stats.callsTimedOut, resynced: t.stats.callsResynced };
    },
    webhooks: () => d.attempts,
    outbox: () => d.outbox.store.stateCounts(),
    outboxDepth: () => d.outbox.worker.stats.outboxDepth,
    outboxWriteFailing: () => d.outbox.worker.writeFailure !== undefined,
    routing: () => d.pipeline.routing(),
    role: () => d.role?.() ?? 'active',
    ...(d.cfg.outbox?.store === 'postgres' && d.cfg.pbx.name !== undefined ? { pbx: d.cfg.pbx.name } : {}),
  };
}

/**
 * `outbox: "writing"`, or `"failing"` with the SQLite code, since when and how many commits failed
 * while the database cannot be written (a full disk: issue #14 item 3). Nothing is dropped
 * meanwhile, but nothing new reaches the CRM either, so /healthz says 503.
 */
function outboxWrite(d: DaemonParts): { outbox: 'writing' | 'failing'; outboxError?: object } {
  const f = d.outbox.worker.writeFailure;
  if (f === undefined) return { outbox: 'writing' };
  return { outbox: 'failing', outboxError: { code: f.code, message: f.message, since: new Date(f.since).toISOString(), failedCommits: f.failures } };
}

export function health(d: DaemonParts): Health {
  const s = d.outbox.worker.stats;
  const pbx = d.pbxState();
  const write = outboxWrite(d);
  const role = roleOf(d);
  return {
    // A standby waiting for its lease is healthy (README "Standby"): it is not meant to be connected,
    // and a 503 would have systemd or a balancer act on a daemon that does its job.
    ok: (pbx === 'connected' || pbx === 'standby') && write.outbox === 'writing',
    ...role,
    pbx,
    ...write,
    liveCalls: d.pipeline.tracker.liveCalls,
    outboxDepth: s.outboxDepth,
    pausedEndpoints: s.pausedEndpoints,
  };
}

const LIMIT = 50;

/** The status page's JSON: live calls with their legs, recent webhooks, dead letters. */
export async function statusSnapshot(d: DaemonParts, now: number): Promise<unknown> {
  const pbx = d.cfg.pbx;
  const calls = [...d.pipeline.tracker.calls.values()].slice(0, 200).map((c) => {
    const v = viewOf(c);
    return {
      id: v.id,
      direction: v.direction,
      customer: v.customerNumber,
      startedAt: v.startedAt,
      legs: v.legs.map((l) => ({ party: l.party.id, kind: l.kind, answeredAt: l.answeredAt, disposition: l.disposition })),
    };
  });
  const row = (r: OutboxRow) => ({
    at: r.updatedAt,
    pbx: r.pbx,
    endpoint: r.endpoint,
    call: r.callId,
    event: r.summary,
    state: r.state,
    attempts: r.attempts,
    error: r.lastError,
  });
  return {
    now,
    ...roleOf(d),
    pbx: { type: pbx.type, name: pbx.name, address: `${pbx.host}:${pbx.port}`, connected: d.pbxConnected(), state: d.pbxState() },
    // On PostgreSQL the outbox is the fleet's: the console then shows each webhook's PBX.
    outboxStore: d.cfg.outbox?.store ?? 'sqlite',
    calls,
    outbox: Object.fromEntries([...(await d.outbox.store.stateCounts())].filter(([, n]) => n > 0)),
    outboxWrite: outboxWrite(d),
    webhooks: (await d.outbox.store.list({}, LIMIT)).map(row),
    dead: (await d.outbox.store.recentDead(LIMIT)).map(row),
  };
}
