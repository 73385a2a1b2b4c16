/**
 * Delivers what the outbox holds: per endpoint, claims due lane heads (one call at one endpoint
 * each, so a call's webhooks go strictly in order) up to `concurrency` at once, makes one attempt
 * each (attempt.ts), and records the decision (schedule.ts) in the store. Endpoints have their own
 * slots, so a slow or dead CRM never delays another. An endpoint failing for `pause_after` is paused:
 * one probe every `probe_every` until one gets an answer, then everything it owes is sent at once.
 */
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { DeliveryConfig, EndpointConfig } from '../config/types.js';
import type { WebhookRequest } from '../emit/request.js';
import { type AttemptResult, type HttpClient, urlForLog } from './attempt.js';
import { type EndpointEvent, NOTIFY_ENDPOINT } from './notify.js';
import { type EndpointHealth, HEALTHY, type Verdict, afterAttempt } from './outbox-state.js';
import type { ClaimAsk, FinishedAttempt, Lease, OutboxRow, OutboxStore, PumpResult } from './store.js';
import { type Decision, decide, isRetryable } from './schedule.js';
import { deliveryHeaders, signingKey } from './signing.js';
import { HttpStatusError } from './errors.js';

/** Every counter in one place, for logs, tests and (later) metrics. */
export interface DeliveryStats {
  attempts: number;
  delivered: number;
  /** Attempts that failed and were scheduled again. */
  retried: number;
  /** Webhooks that became dead: permanent failure or schedule used up. */
  dead: number;
  /** Webhooks dead-lettered by the outbox limits (max_rows, max_age). */
  expired: number;
  /** Attempts cut off by shutdown, kept for the next start. */
  requeued: number;
  /** Attempts that never finished before a crash, sent again at start-up. */
  recovered: number;
  pausedEndpoints: number;
  /** Webhooks not yet delivered or dead. */
  outboxDepth: number;
}

/** What delivery needs of an endpoint: a CRM's from webhooks.ini, or the built-in notify endpoint's. */
export type DeliveryEndpoint = Pick<EndpointConfig, 'name' | 'signingSecrets' | 'retryOn'>;

export interface WorkerOptions {
  readonly store: OutboxStore;
  readonly http: HttpClient;
  readonly log: Logger;
  /** Enabled endpoints; webhooks for others wait in the outbox. */
  readonly endpoints: readonly DeliveryEndpoint[];
  readonly delivery: DeliveryConfig;
  readonly now?: () => number;
  readonly random?: () => number;
  /** Told of every finished attempt (metrics): the outcome and how long the webhook waited in all. */
  readonly onAttempt?: (endpoint: string, outcome: Decision['kind'], sinceQueuedMs: number) => void;
  /** Told when an endpoint pauses or resumes and when webhooks go dead (delivery.notify_url, issue #16 item 6). */
  readonly onEndpointEvent?: (ev: EndpointEvent) => void;
  /** The least time between two max_rows runs after pumps (MAX_ROWS_EVERY_MS; tests: 0). */
  readonly maxRowsEveryMs?: number;
}

/** The outbox cannot be written (a full disk…), since when and why; undefined once a commit succeeds. */
export interface WriteFailure {
  readonly since: number;
  readonly code: string;
  readonly message: string;
  /** Commits that failed since `since`. */
  readonly failures: number;
}

interface Endpoint {
  readonly name: string;
  readonly keys: readonly Buffer[];
  readonly retryOn: readonly number[];
  inFlight: number;
  health: EndpointHealth;
}

function endpointsOf(configs: readonly DeliveryEndpoint[], previous: ReadonlyMap<string, Endpoint>): Map<string, Endpoint> {
  return new Map(
    configs.map((e) => {
      const before = previous.get(e.name);
      const keys = (e.signingSecrets ?? []).map(signingKey);
      return [e.name, { name: e.name, keys, retryOn: e.retryOn ?? [], inFlight: before?.inFlight ?? 0, health: before?.health ?? HEALTHY }];
    }),
  );
}

/** Due webhooks are found without this, but `pbxhook outbox retry` from another process is not. */
const POLL_MS = 1_000;
const HOUSEKEEPING_MS = 60_000;
/**
 * An outbox over max_rows is brought back under it at most this often between the minute's runs:
 * on PostgreSQL each run counts the undelivered rows of the whole shared outbox (16 ms at 110,000),
 * and run after every pump of every process it would keep the database busy as long as the outbox is
 * over. Between runs the outbox passes the limit by what comes in meanwhile (a quarter of a
 * second's webhooks; more while a whole run goes), which the next run moves to dead at once, a few
 * ms (bench/over-limit.ts: the longest event-loop stall 10–13 ms at 250 ms, 9–19 ms at 1 s).
 */
const MAX_ROWS_EVERY_MS = 250;
const LANE_IDLE_MS = 86_400_000;
/** How old the saved live calls may get when PBX events change them without a webhook (changed()). */
const LIVE_STATE_EVERY_MS = 100;
/**
 * A claim's lease beyond the attempt's own timeout: the answer is recorded at the next pump (a turn
 * or two of the event loop), so a live worker never loses a claim, and a dead one's come back soon.
 */
const LEASE_MARGIN_MS = 5_000;
/** A failed attempt's log line carries the start of the answer; the attempt row keeps more (1 KB). */
const LOGGED_ANSWER_CHARS = 200;

export class OutboxWorker {
  readonly stats: DeliveryStats = {
    attempts: 0, delivered: 0, retried: 0, dead: 0, expired: 0, requeued: 0, recovered: 0, pausedEndpoints: 0, outboxDepth: 0,
  };
  private endpoints: Map<string, Endpoint>;
  private readonly abort = new AbortController();
  private readonly running = new Set<Promise<void>>();
  private readonly now: () => number;
  private readonly random: () => number;
  private timer: NodeJS.Timeout | undefined;
  private housekeeper: NodeJS.Timeout | undefined;
  private wakeQueued = false;
  /** The pump running now (one at a time), and whether another was asked for meanwhile. */
  private pumping: Promise<void> | undefined;
  private pumpAgain = false;
  private housekeepingRun: Promise<void> | undefined;
  /** A whole housekeeping (the start's, the minute's) was asked for and has not begun yet. */
  private wholeHousekeepingDue = false;
  /** performance.now() before which a pump over max_rows does not start a max_rows run. */
  private maxRowsNextAt = 0;
  /** This process as a claim holder: a restart is a new holder (store.ts Lease). */
  private readonly holder = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  /** The claims this worker is sending (row id → until when its lease holds), until their answer is recorded. */
  private readonly leases = new Map<number, number>();
  private pendingWrites: PendingWrite[] = [];
  /** PBX events' webhooks not yet committed (one array per event). */
  private pendingInserts: Array<readonly WebhookRequest[]> = [];
  private stopping = false;
  private failing: WriteFailure | undefined;
  /** Where the live calls come from (the daemon's pipeline), saved with each commit that writes webhooks. */
  private liveState: (() => ReadonlyMap<string, string | undefined>) | undefined;
  /** A PBX event changed the live state since it was last taken; when it was taken (performance.now()). */
  private liveChanged = false;
  private liveTakenAt = -Infinity;
  private liveTimer: NodeJS.Timeout | undefined;
  /** Live state taken but not committed yet (a failed commit keeps it for the next). */
  private stateToWrite = new Map<string, string | undefined>();
  /** urlForLog per URL text (see urlForLog below). */
  private readonly loggedUrls = new Map<string, string>();
  /**
   * The log without redaction, for the 'webhook delivered' line alone: pino's redaction of the
   * wildcard paths (log.ts) was 45 % of that line's CPU, 3x the rest (issue #15).
   */
  private readonly deliveredLog: WorkerOptions['log'];

  constructor(private readonly o: WorkerOptions) {
    this.now = o.now ?? Date.now;
    this.deliveredLog = o.log.child({}, { redact: [] });
    this.random = o.random ?? Math.random;
    this.endpoints = endpointsOf(o.endpoints, new Map());
    // Every attempt in flight listens for shutdown: as many as concurrency × endpoints, not a leak.
    setMaxListeners(0, this.abort.signal);
  }

  /** Per endpoint, webhooks that became dead in this run (an attempt or an outbox limit): a counter for alerts (issue #16 item 6). */
  readonly deadLetters = new Map<string, number>();

  /** An endpoint's health as the worker sees it (the console); undefined when not enabled. */
  healthOf(endpoint: string): EndpointHealth | undefined {
    return this.endpoints.get(endpoint)?.health;
  }

  /**
   * "Probe now" (issue #16 item 3): a paused endpoint's next probe is due at once rather than at
   * its probe_every. False when the endpoint is not enabled or not paused (nothing to probe).
   */
  probeNow(endpoint: string): boolean {
    const ep = this.endpoints.get(endpoint);
    if (ep === undefined || ep.health.pausedAt === null) return false;
    ep.health = { ...ep.health, nextProbeAt: this.now() };
    this.kick();
    return true;
  }

  /** An operator's action changed the outbox from this process: look for due webhooks now, not at the next poll. */
  kick(): void {
    if (!this.stopping) this.wake();
  }

  /** Set while commits fail (a full disk: issue #14 item 3), for /healthz and the status page. */
  get writeFailure(): WriteFailure | undefined {
    return this.failing;
  }

  /**
   * Saves the live calls with the outbox (issue #14 item 2): `take` gives what changed since it
   * was last called; it is written in the same commit as the webhooks enqueued meanwhile, so a
   * restart finds the calls as those webhooks left them. Call `changed()` after each PBX event.
   */
  saveLiveStateFrom(take: () => ReadonlyMap<string, string | undefined>): void {
    this.liveState = take;
  }

  /**
   * A PBX event changed the live state. With webhooks pending, their commit takes it (a restart
   * must never find a call older than its webhooks: it would end it again). Without, it waits up
   * to LIVE_STATE_EVERY_MS: most events change a call and send nothing, and each woke a commit of
   * its own (issue #15; under load most commits carry webhooks anyway, so the saving shows between
   * a call's webhooks, not at 300 calls/s). A kill -9 can lose that much of them, which the
   * reconnect resync repairs as it does the events read while no daemon was connected.
   */
  changed(): void {
    if (this.liveState === undefined) return;
    this.liveChanged = true;
    if (this.pendingInserts.length === 0) this.saveLiveStateSoon();
  }

  /**
   * SIGHUP: the new endpoint list takes effect for the next attempt. Endpoints that stay keep their
   * in-flight count and health; webhooks of a removed or disabled endpoint wait in the outbox.
   */
  setEndpoints(endpoints: readonly DeliveryEndpoint[]): void {
    this.endpoints = endpointsOf(endpoints, this.endpoints);
    this.countPaused();
    this.wake();
  }

  /** Resumes what a previous run left: in-flight attempts are sent again, pauses carry on. */
  async start(): Promise<void> {
    const { store, log } = this.o;
    this.stats.recovered = await store.recover(this.now());
    for (const [name, h] of await store.health()) {
      const ep = this.endpoints.get(name);
      if (ep) ep.health = h;
    }
    this.countPaused();
    const orphans = (await store.counts()).filter((c) => !this.endpoints.has(c.endpoint) && c.state !== 'delivered' && c.state !== 'dead');
    for (const o of orphans) {
      log.warn({ endpoint: o.endpoint, state: o.state, count: o.count }, 'webhooks for an endpoint that is not configured or not enabled wait in the outbox');
    }
    await this.housekeeping();
    log.info({ file: store.location, undelivered: this.stats.outboxDepth, recovered: this.stats.recovered }, 'outbox open');
    if (this.stopping) return;
    this.housekeeper = setInterval(() => void this.housekeeping(), HOUSEKEEPING_MS);
    void this.pump();
  }

  /**
   * One PBX event's webhooks: on disk, all or none, at the next pump (a turn or two of the event
   * loop later, with every other event read meanwhile: one commit, not one each), then delivered as
   * soon as their lane allows. A kill -9 in between loses them, as it loses the PBX events the
   * daemon was reading at that moment either way.
   */
  enqueue(reqs: readonly WebhookRequest[]): void {
    if (reqs.length === 0) return;
    this.pendingInserts.push(reqs);
    this.stats.outboxDepth += reqs.length;
    this.wake();
  }

  /**
   * Commits what was enqueued; stops claiming; waits stop_timeout (or `waitMs`, if shorter: what the
   * daemon's shutdown grace leaves) for attempts in flight, then cuts them off (they stay pending).
   */
  async stop(waitMs = this.o.delivery.stopTimeoutMs): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    clearTimeout(this.liveTimer);
    clearInterval(this.housekeeper);
    await this.pump();
    const all = () => Promise.allSettled([...this.running]);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), Math.min(waitMs, this.o.delivery.stopTimeoutMs))));
    const finished = await Promise.race([all().then(() => true), late]);
    clearTimeout(timer);
    if (!finished) {
      this.o.log.warn({ inFlight: this.running.size }, 'stop_timeout reached: cutting off attempts in flight; they stay in the outbox');
      this.abort.abort();
      await all();
    }
    await this.pumping; // the answers recorded after the attempts ended
    if (this.pendingInserts.length > 0) await this.pump(); // the stop's first commit failed: one more try
    await this.housekeepingRun;
    const lost = count(this.pendingInserts);
    if (lost > 0) {
      this.o.log.error({ code: 'PBXHOOK_OUTBOX_WRITE', webhooks: lost }, 'stopping: webhooks could not be written to the outbox and are lost');
    }
    this.stats.outboxDepth = await this.o.store.depth();
  }

  /**
   * Runs pump one turn of the event loop later (while stopping, only to record attempts that
   * finish): the answers and PBX events read in that turn join the same commit. An idle loop turns
   * in microseconds; a busy one gets fewer, larger commits (issue #7).
   */
  private wake(): void {
    if (this.wakeQueued) return;
    this.wakeQueued = true;
    setImmediate(() =>
      setImmediate(() => {
        this.wakeQueued = false;
        void this.pump();
      }),
    );
  }

  /**
   * Runs a pump, or if one is running, another right after it: one at a time, each writing what
   * came meanwhile. Resolves when the pumps asked so far are done.
   */
  private pump(): Promise<void> {
    if (this.pumping !== undefined) {
      this.pumpAgain = true;
      return this.pumping;
    }
    const run = (async () => {
      do {
        this.pumpAgain = false;
        try {
          await this.pumpOnce();
        } catch (err) {
          this.o.log.error({ err }, 'outbox pump failed unexpectedly');
        }
        // Stopping too: a pump asked for meanwhile may carry an answer the stop waits for (test/14).
      } while (this.pumpAgain);
    })().finally(() => (this.pumping = undefined));
    this.pumping = run;
    return run;
  }

  /**
   * One transaction per pump, one store call: the PBX events enqueued and the attempts finished
   * since the last pump are written, then free slots are filled. One commit for many webhooks, not
   * one per step (issue #7, BENCHMARKS.md); one round trip for a networked store (issue #17).
   * Requests start only once their claims are committed.
   */
  private async pumpOnce(): Promise<void> {
    const inserts = this.pendingInserts;
    const writes = this.pendingWrites;
    this.pendingInserts = [];
    this.pendingWrites = [];
    this.takeLiveState(inserts.length > 0 || this.stopping);
    const state = this.stateToWrite;
    if (this.stopping && writes.length === 0 && inserts.length === 0 && state.size === 0) return;
    const now = this.now();
    // Asked before the commit: a probe is the one claim of an endpoint paused now.
    const asked = this.stopping ? [] : [...this.endpoints.values()].map((ep) => ({ ep, paused: ep.health.pausedAt !== null, limit: this.freeSlots(ep, now) }));
    const claims: ClaimAsk[] = asked.map((a) => ({ endpoint: a.ep.name, limit: a.limit }));
    const leaseMs = this.leaseMs();
    const renew = this.leasesEnding(now, leaseMs);
    let result: PumpResult | undefined;
    let failure: unknown;
    try {
      result = await this.o.store.commitPump(
        { enqueue: inserts, finished: writes.map((w) => w.attempt), liveState: state, claims, holder: this.holder, leaseMs, renew },
        now,
      );
      for (const id of renew) if (this.leases.has(id)) this.leases.set(id, result.lease.until);
    } catch (err) {
      failure = err;
      // The commit itself failed (disk full, I/O error, connection lost): keep the events for the next try.
      this.pendingInserts = inserts.concat(this.pendingInserts);
    }
    if (result !== undefined) {
      this.writable(now);
      this.stateToWrite = new Map();
      for (const [i, err] of result.lostEvents) this.lost(inserts[i]!, err);
      for (const [i, err] of result.unrecorded) writes[i]!.error = err;
      for (const [endpoint, err] of result.unclaimed) this.o.log.error({ err, endpoint }, 'outbox claim failed; trying again shortly');
    } else this.unwritable(failure, now, count(inserts), writes.length);
    // Finished attempts wait for the next commit, their rows in flight meanwhile, rather than
    // leave their rows in flight for good (issue #14 item 3). Only a stop gives up on them: the
    // next start sends them again, with the same webhook-id.
    const keep = failure !== undefined && !this.stopping && this.o.store.isUnavailable(failure);
    if (keep) this.pendingWrites = writes.concat(this.pendingWrites);
    else for (const w of writes) w.settle(failure);
    if (result !== undefined) this.launchAll(result, asked);
    if (this.stopping) return;
    if (this.stats.outboxDepth > this.o.delivery.maxRows && performance.now() >= this.maxRowsNextAt) {
      this.maxRowsNextAt = performance.now() + (this.o.maxRowsEveryMs ?? MAX_ROWS_EVERY_MS);
      void this.housekeeping('max_rows');
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.pump(), Math.max(0, this.nextWake(now, result?.nextDueAt) - now));
  }

  /** Longer than an attempt can take (delivery timeout + margin), so a live worker never loses a claim. */
  private leaseMs(): number {
    return this.o.delivery.timeoutMs + LEASE_MARGIN_MS;
  }

  /**
   * Claims still being sent whose lease is half gone: renewed with this pump. An answer is
   * recorded a pump after it comes, and a pump can be slow (a database under load, a starved
   * process): without renewal its claim could run out first and be sent again by another worker
   * (issue #17, four workers on a 2-core machine).
   */
  private leasesEnding(now: number, leaseMs: number): number[] {
    const ids: number[] = [];
    for (const [id, until] of this.leases) if (until - now < leaseMs / 2) ids.push(id);
    return ids;
  }

  /** Starts the attempts a commit claimed, each counted against its endpoint's slots. */
  private launchAll(result: PumpResult, asked: ReadonlyArray<{ ep: Endpoint; paused: boolean }>): void {
    if (result.claimed.length === 0) return;
    const askedOf = new Map(asked.map((a) => [a.ep.name, a]));
    for (const row of result.claimed) {
      const a = askedOf.get(row.endpoint);
      // A reload during the commit replaced the endpoint's entry: count the slot where it is now.
      const ep = this.endpoints.get(row.endpoint) ?? a?.ep;
      if (ep === undefined) continue; // never: claims are asked per endpoint
      ep.inFlight++;
      this.leases.set(row.id, result.lease.until);
      this.launch(ep, row, a?.paused ?? false, result.lease);
    }
  }

  /**
   * Merges what changed into what waits to be written (the newest text of a key wins): always with
   * webhooks, otherwise once LIVE_STATE_EVERY_MS has passed since it was last taken.
   */
  private takeLiveState(withWebhooks: boolean): void {
    if (this.liveState === undefined) return;
    const at = performance.now();
    if (!withWebhooks && at - this.liveTakenAt < LIVE_STATE_EVERY_MS) {
      if (this.liveChanged) this.saveLiveStateSoon();
      return;
    }
    clearTimeout(this.liveTimer);
    this.liveTimer = undefined;
    // The first change after a quiet spell goes at once; the interval runs from a save that held one.
    if (this.liveChanged) this.liveTakenAt = at;
    this.liveChanged = false;
    for (const [key, value] of this.liveState()) this.stateToWrite.set(key, value);
  }

  /** A pump once LIVE_STATE_EVERY_MS has passed since the live state was last taken (at once if it has). */
  private saveLiveStateSoon(): void {
    if (this.liveTimer !== undefined || this.stopping) return;
    const wait = this.liveTakenAt + LIVE_STATE_EVERY_MS - performance.now();
    if (wait <= 0) return this.wake();
    this.liveTimer = setTimeout(() => {
      this.liveTimer = undefined;
      this.wake();
    }, Math.ceil(wait) + 1);
  }

  /** A commit failed: logged once when it starts failing (and again if the reason changes), not every second. */
  private unwritable(err: unknown, now: number, webhooks: number, attempts: number): void {
    const code = String((err as { code?: unknown } | null)?.code ?? 'unknown');
    const message = err instanceof Error ? err.message : String(err);
    const before = this.failing;
    this.failing = { since: before?.since ?? now, code, message, failures: (before?.failures ?? 0) + 1 };
    if (before?.code === code) return;
    this.o.log.error(
      { err, code: 'PBXHOOK_OUTBOX_WRITE', sqlite: code, webhooks, attempts },
      'outbox commit failed (disk full?); nothing is dropped: trying again every second',
    );
  }

  private writable(now: number): void {
    const was = this.failing;
    if (was === undefined) return;
    this.failing = undefined;
    this.o.log.info({ failingForMs: now - was.since, failedCommits: was.failures }, 'outbox writable again: delivery resumes');
  }

  /** One event's webhooks that cannot be stored (never expected): logged, not retried. */
  private lost(reqs: readonly WebhookRequest[], err: unknown): void {
    this.stats.outboxDepth -= reqs.length;
    this.o.log.error({ err, code: 'PBXHOOK_OUTBOX_WRITE', webhooks: reqs.length }, 'webhooks could not be written to the outbox');
  }

  /** How many lane heads the endpoint may start now: its free slots, or its one probe when paused and due. */
  private freeSlots(ep: Endpoint, now: number): number {
    if (ep.health.pausedAt !== null) return ep.inFlight > 0 || now < (ep.health.nextProbeAt ?? 0) ? 0 : 1;
    return Math.max(0, this.o.delivery.concurrency - ep.inFlight);
  }

  private launch(ep: Endpoint, row: OutboxRow, probe: boolean, lease: Lease): void {
    let held = true;
    const release = (): void => {
      if (!held) return;
      held = false;
      ep.inFlight--;
    };
    const job = this.deliver(ep, row, probe, lease, release)
      .catch((err: unknown) => this.o.log.error({ err, endpoint: ep.name, webhookId: row.webhookId }, 'delivery attempt failed unexpectedly'))
      .finally(() => {
        release();
        this.leases.delete(row.id);
        this.running.delete(job);
        this.wake();
      });
    this.running.add(job);
  }

  /**
   * The earliest moment an endpoint with a free slot has something due (as the last commit saw its
   * lanes); at most POLL_MS away.
   */
  private nextWake(now: number, dueAt: ReadonlyMap<string, number> = new Map()): number {
    let next = now + POLL_MS;
    for (const ep of this.endpoints.values()) {
      const due = dueAt.get(ep.name);
      if (ep.health.pausedAt !== null) {
        // A probe needs both: its time has come and a webhook is due.
        if (ep.inFlight === 0 && due !== undefined) next = Math.min(next, Math.max(ep.health.nextProbeAt ?? now, due));
      } else if (ep.inFlight < this.o.delivery.concurrency) {
        next = Math.min(next, due ?? next);
      }
    }
    return next;
  }

  private async deliver(ep: Endpoint, row: OutboxRow, probe: boolean, lease: Lease, release: () => void): Promise<void> {
    const { http, delivery } = this.o;
    const req: WebhookRequest = { endpoint: row.endpoint, method: row.method, url: row.url, headers: row.headers, body: row.body, orderKey: row.lane };
    this.stats.attempts++;
    const result = await http.attempt(req, deliveryHeaders(row, this.now(), ep.keys), this.abort.signal);
    // A delivered webhook's slot is free once its answer is in: the commit that records it claims
    // the next one too, instead of one pump later (issue #15). Its lane stays in flight until then.
    // A failure keeps its slot until recorded: its verdict may pause the endpoint, which must stop
    // further claims, and a probe is one at a time.
    if (result.ok && !probe) release();
    const now = this.now();
    const decision = decide(result, { step: row.step, probe, retryOn: ep.retryOn }, delivery, now, this.random);
    try {
      await this.record({ webhook: row, lease, attempt: recordOf(result), decision });
    } catch (err) {
      this.o.log.error({ err, endpoint: ep.name, webhookId: row.webhookId }, 'could not record a delivery attempt');
      return;
    }
    this.count(decision);
    if (decision.kind === 'dead') this.deadLetters.set(ep.name, (this.deadLetters.get(ep.name) ?? 0) + 1);
    this.o.onAttempt?.(ep.name, decision.kind, now - row.createdAt);
    this.logAttempt(row, result, decision, probe, ep.retryOn);
    if (decision.kind === 'dead') {
      this.o.onEndpointEvent?.({ type: 'webhook.dead', endpoint: ep.name, at: now, count: 1, reason: decision.reason, webhookId: row.webhookId, call: row.callId });
    }
    try {
      await this.updateHealth(ep, verdictOf(result, ep.retryOn), now, lastErrorOf(result));
    } catch (err) {
      // Kept in memory all the same; written with the endpoint's next change of health.
      this.o.log.error({ err, endpoint: ep.name }, 'could not save the endpoint health');
    }
  }

  /** Queues a finished attempt's write for the next pump; settles once it is committed (or not). */
  private record(attempt: FinishedAttempt): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const pending: PendingWrite = {
        attempt,
        error: undefined,
        settle(failure) {
          if (failure ?? pending.error) reject(failure ?? pending.error);
          else resolve();
        },
      };
      this.pendingWrites.push(pending);
      this.wake();
    });
  }

  private count(d: Decision): void {
    const s = this.stats;
    if (d.kind === 'delivered') s.delivered++;
    else if (d.kind === 'retry') s.retried++;
    else if (d.kind === 'dead') s.dead++;
    else s.requeued++;
    if (d.kind !== 'retry') s.outboxDepth = Math.max(0, s.outboxDepth - (d.kind === 'requeue' ? 0 : 1));
  }

  /** In memory at once (the next claims see it), then saved. */
  private async updateHealth(ep: Endpoint, verdict: Verdict, now: number, lastError?: string): Promise<void> {
    const { health, change } = afterAttempt(ep.health, verdict, now, this.o.delivery);
    if (health === ep.health) return;
    const before = ep.health;
    ep.health = health;
    this.countPaused();
    await this.o.store.saveHealth(ep.name, health);
    if (change === 'paused') {
      this.o.log.warn(
        { endpoint: ep.name, failingForMs: now - (health.failingSince ?? now), probeEveryMs: this.o.delivery.probeEveryMs },
        'endpoint paused: every attempt failed for delivery.pause_after; probing it until it answers',
      );
      const failingForMs = now - (health.failingSince ?? now);
      this.o.onEndpointEvent?.({ type: 'endpoint.paused', endpoint: ep.name, at: now, failingForMs, ...(lastError !== undefined ? { lastError } : {}) });
    } else if (change === 'resumed') {
      const due = await this.o.store.resumeEndpoint(ep.name, now);
      this.o.log.info({ endpoint: ep.name, pausedForMs: now - (before.pausedAt ?? now), due }, 'endpoint resumed: its probe was answered');
      this.o.onEndpointEvent?.({ type: 'endpoint.resumed', endpoint: ep.name, at: now, pausedForMs: now - (before.pausedAt ?? now) });
    }
  }

  private countPaused(): void {
    this.stats.pausedEndpoints = [...this.endpoints.values()].filter((e) => e.health.pausedAt !== null).length;
  }

  private logAttempt(row: OutboxRow, result: AttemptResult, d: Decision, probe: boolean, retryOn: readonly number[]): void {
    // At log level warn and above a busy daemon skips building a line per delivered webhook.
    if (d.kind === 'delivered' && !this.o.log.isLevelEnabled('info')) return;
    if (d.kind === 'delivered' && result.ok && !probe) {
      // The common line, one per webhook: one literal of fixed fields, none of them a secret (the
      // URL without its query, the notify URL not at all), so it skips redaction (issue #15).
      this.deliveredLog.info(
        { endpoint: row.endpoint, method: row.method, url: this.urlForLog(row), webhookId: row.webhookId, call: row.callId, seq: row.seq, attempt: row.attempts, status: result.status, latencyMs: result.latencyMs },
        'webhook delivered',
      );
      return;
    }
    const fields = {
      endpoint: row.endpoint,
      method: row.method,
      url: this.urlForLog(row),
      webhookId: row.webhookId,
      call: row.callId,
      seq: row.seq,
      attempt: row.attempts,
      status: result.status,
      latencyMs: result.latencyMs,
      ...(probe ? { probe } : {}),
      ...(result.ok
        ? {}
        : {
            code: result.error.code,
            body: result.body?.slice(0, LOGGED_ANSWER_CHARS),
            retryable: isRetryable(result, retryOn) || d.kind === 'requeue',
            willRetry: d.kind === 'retry' || d.kind === 'requeue',
          }),
      ...(d.kind === 'retry' ? { nextAttemptAt: new Date(d.at).toISOString() } : {}),
      ...(d.kind === 'dead' ? { reason: d.reason } : {}),
    };
    if (d.kind === 'delivered') this.o.log.info(fields, 'webhook delivered');
    else if (d.kind === 'dead') this.o.log.error(fields, 'webhook dead: not retried again (pbxhook outbox retry sends it again)');
    else this.o.log.warn(fields, 'webhook attempt failed');
  }

  /** An endpoint's URL as logged, worked out once per URL: every webhook of an endpoint has the same one. */
  private urlForLog(row: OutboxRow): string {
    // A chat tool's incoming-webhook URL is its secret, path included.
    if (row.endpoint === NOTIFY_ENDPOINT) return 'delivery.notify_url';
    let logged = this.loggedUrls.get(row.url);
    if (logged === undefined) {
      if (this.loggedUrls.size >= 256) this.loggedUrls.clear();
      logged = urlForLog(row.url);
      this.loggedUrls.set(row.url, logged);
    }
    return logged;
  }

  /**
   * Outbox limits and clean-up; every webhook a limit touches is logged with its reason. One run at
   * a time. `max_rows` alone after a pump that left the outbox over it: the whole housekeeping reads
   * every undelivered row for max_age (~50 ms at 110,000), and with webhooks coming in faster than
   * they go out it ran after every pump, so the outbox delivered a fraction of its rate exactly when
   * it was fullest (bench/over-limit.ts). A whole run asked for while a max_rows run goes (the
   * minute's) follows it at once; the promise is the whole run's too.
   */
  private housekeeping(what: 'all' | 'max_rows' = 'all'): Promise<void> {
    if (what === 'all') this.wholeHousekeepingDue = true;
    this.housekeepingRun ??= this.keepHouseWhileOwed().finally(() => (this.housekeepingRun = undefined));
    return this.housekeepingRun;
  }

  private async keepHouseWhileOwed(): Promise<void> {
    do await this.keepHouse();
    while (this.wholeHousekeepingDue && !this.stopping);
  }

  private async keepHouse(): Promise<void> {
    const { store, log, delivery: d } = this.o;
    const now = this.now();
    const whole = this.wholeHousekeepingDue;
    this.wholeHousekeepingDue = false;
    try {
      const aged = whole ? await store.expireOlderThan(now - d.maxAgeMs, now) : new Map<string, number>();
      const full = await store.enforceMaxRows(d.maxRows, now);
      for (const [what, m] of [['delivery.max_age', aged], ['delivery.max_rows', full]] as const) {
        for (const [endpoint, count] of m) {
          this.stats.expired += count;
          this.deadLetters.set(endpoint, (this.deadLetters.get(endpoint) ?? 0) + count);
          log.error({ endpoint, count, code: what === 'delivery.max_age' ? 'PBXHOOK_OUTBOX_EXPIRED' : 'PBXHOOK_OUTBOX_FULL' },
            `outbox limit ${what} reached: webhooks moved to dead (pbxhook outbox list --state dead)`);
          this.o.onEndpointEvent?.({ type: 'webhook.dead', endpoint, at: now, count, reason: `outbox limit ${what} reached` });
        }
      }
      if (whole) {
        const delivered = await store.purge('delivered', now - d.keepDeliveredMs);
        const dead = await store.purge('dead', now - d.keepDeadMs);
        // A lane a day idle is finished unless its call is live (a call can outlast a day: a stuck channel).
        await store.forgetIdleLanes(now - Math.max(d.keepDeliveredMs, LANE_IDLE_MS));
        if (delivered + dead > 0) log.info({ delivered, dead }, 'outbox: removed webhooks past keep_delivered / keep_dead');
      }
      this.stats.outboxDepth = await store.depth();
    } catch (err) {
      log.error({ err }, 'outbox housekeeping failed');
    }
  }
}

const count = (events: ReadonlyArray<readonly WebhookRequest[]>) => events.reduce((n, reqs) => n + reqs.length, 0);

interface PendingWrite {
  readonly attempt: FinishedAttempt;
  error: unknown;
  settle(failure: unknown): void;
}

function recordOf(r: AttemptResult) {
  return r.ok
    ? { latencyMs: r.latencyMs, status: r.status, errorCode: undefined, error: undefined, response: r.body }
    : {
        latencyMs: r.latencyMs,
        status: r.status,
        errorCode: r.error.code,
        error: r.error.message,
        response: r.body,
        retryAfterMs: r.error instanceof HttpStatusError ? r.error.retryAfterMs : undefined,
      };
}

/** A 4xx that is not retried means the endpoint is up and answering; only retryable failures count as down. */
function verdictOf(r: AttemptResult, retryOn: readonly number[]): Verdict {
  if (r.ok) return 'answered';
  if (r.error.code === 'PBXHOOK_HTTP_ABORTED') return 'aborted';
  return isRetryable(r, retryOn) ? 'unreachable' : 'answered';
}

/** For a notification: `HTTP 503`, or the error code when nothing answered. */
function lastErrorOf(result: AttemptResult): string | undefined {
  if (result.ok) return undefined;
  return result.status !== undefined ? `HTTP ${result.status}` : result.error.code;
}
