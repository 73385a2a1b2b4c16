/**
 * The outbox store: what every backend (SQLite in the state directory, PostgreSQL shared by a fleet)
 * keeps and guarantees, as one asynchronous interface (issue #17 item 1). The worker, the operator
 * actions, the console, the ops endpoints, the CLI and the daemon see only this; which backend
 * answers is decided in one place (outbox.ts `openOutbox`). test/support/outboxStoreSuite.ts is the
 * behaviour every backend must pass.
 *
 * Promises because a database on the network can only answer later; the SQLite backend answers
 * at once. The hot path is ONE call per pump (`commitPump`), so a networked backend pays one round
 * trip per pump, not one per webhook.
 *
 * Words used below:
 * - `now`: the caller's clock, epoch ms. Every time a store writes or compares (created_at, next_at,
 *   updated_at, lease expiry) is a `now` it was given, never its own clock: tests drive a fake
 *   clock, and a fleet's hosts compare leases on their (NTP) clocks, not the database's.
 * - lane: one call at one endpoint (`WebhookRequest.orderKey`) of one PBX. A lane's webhooks are
 *   numbered (`seq`) in the order they were enqueued and delivered strictly in that order: only its
 *   head (first undelivered webhook) is ever claimed. Lanes of different PBXes never mix, even when
 *   their call ids collide, so the lane reads and actions name a lane by both (`LaneRef`: a
 *   row's `pbx` and `lane`).
 * - claim: a lane head moved to in_flight for one holder until a lease expires. While the lease
 *   holds, nobody else claims that webhook or anything behind it in its lane. A holder that dies
 *   loses its claims when the lease expires (shared backends) or at the next `recover` (a backend
 *   with one sending process, SQLite: the state_dir lock says nobody else can hold them).
 * - transition: a named move of outbox-state.ts (claim, deliver, fail, kill, requeue, recover,
 *   retry, expire), applied only from its `from` states; anything else changes nothing.
 */
import type { WebhookRequest } from '../emit/request.js';
import type { EndpointHealth, OutboxState } from './outbox-state.js';
import type { Decision } from './schedule.js';

/**
 * A lane's last activity (`lanes.updated_at`) is written only when the one written is this old:
 * the lanes are indexed by it (the idle-lanes check reads only lanes idle long enough), and
 * rewriting it at every webhook moved the lane's entry in that index every time: +2.9 pages of
 * SQLite's write-ahead log per commit of 10 webhooks (11.2 → 14.1). So for every activity at `a`,
 * `updated_at > a - LANE_TOUCH_MS` (and it never decreases), and "idle since `before`" reads
 * `updated_at <= before - LANE_TOUCH_MS`.
 */
export const LANE_TOUCH_MS = 3_600_000;

/**
 * Live-state keys of the calls in progress (`call:<id>`; the pipeline writes them). A lane is
 * `<endpoint>:<call id>` (the stores' SQL takes the call from it as callOf does), and one whose
 * call is still live is never forgotten, however long the call goes on without a webhook: else its
 * next webhook would start webhook-sequence over at 1.
 */
export const LIVE_CALL_KEY_PREFIX = 'call:';

/** One webhook as stored: the request as it will be sent, and where it stands. */
export interface OutboxRow {
  /** The store's row number: unique in the store, increasing with enqueue order. */
  readonly id: number;
  /** Standard Webhooks `webhook-id`: the same for every attempt, across restarts and workers. */
  readonly webhookId: string;
  /** The PBX whose events made it (`pbx` of the store that enqueued it). */
  readonly pbx: string;
  readonly endpoint: string;
  readonly lane: string;
  /** Position in its lane, from 1; never reused for a lane (webhook-sequence). */
  readonly seq: number;
  readonly callId: string;
  readonly summary: string;
  readonly method: 'GET' | 'POST';
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly state: OutboxState;
  /** Failed attempts so far in the current retry schedule. */
  readonly step: number;
  /** Attempts started in all (a claim counts one). */
  readonly attempts: number;
  /** When it may be claimed (pending, failed_waiting), as the caller's `now` set it. */
  readonly nextAt: number;
  readonly createdAt: number;
  /** The last transition; for an in_flight row, when its attempt started (its claim). */
  readonly updatedAt: number;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
}

/** Which webhooks an operator means: ids (row numbers or webhook-ids), an endpoint, states. */
export interface Selection {
  readonly ids?: readonly string[];
  readonly endpoint?: string;
  readonly states?: readonly OutboxState[];
}

/** What one finished attempt tells the store (an `attempts` row). */
export interface AttemptRecord {
  /** Whole milliseconds (attempt.ts rounds them). */
  readonly latencyMs: number;
  readonly status: number | undefined;
  readonly errorCode: string | undefined;
  readonly error: string | undefined;
  /** The start of a failed attempt's answer (tokens masked); the store keeps RESPONSE_KEEP_CHARS (issue #16 item 2). */
  readonly response?: string | undefined;
  /** The Retry-After the answer asked for, in ms. */
  readonly retryAfterMs?: number | undefined;
}

/** How much of an answer an attempt row keeps: enough to read the CRM's error, not its pages. */
export const RESPONSE_KEEP_CHARS = 1024;

/** An attempt as read back (the console, `pbxhook outbox list --id`); outcome null: still in flight. */
export interface AttemptRow extends Omit<AttemptRecord, 'status' | 'errorCode' | 'error' | 'response' | 'retryAfterMs'> {
  readonly n: number;
  readonly startedAt: number;
  readonly status: number | null;
  readonly errorCode: string | null;
  readonly error: string | null;
  readonly outcome: string | null;
  readonly response: string | null;
  readonly retryAfterMs: number | null;
}

/** How many webhooks of an endpoint are in a state, and the oldest of them (`pbxhook outbox stats`). */
export interface StateCount {
  readonly endpoint: string;
  readonly state: OutboxState;
  readonly count: number;
  readonly oldest: number;
}

/** What the console shows of an endpoint beside its health (issue #16 item 1). */
export interface EndpointActivity {
  readonly lastDeliveredAt: number | null;
  readonly lastError: { at: number; status: number | null; code: string | null; error: string; webhook: number } | null;
  readonly attemptsSince: number;
  readonly dead: number;
}

/** A lane by name: its text (`OutboxRow.lane`, endpoint:call) and the PBX whose call it is (`OutboxRow.pbx`). */
export interface LaneRef {
  readonly pbx: string;
  readonly lane: string;
}

/** A lane's head: the webhook every later one of the lane waits behind. */
export interface LaneHead {
  readonly id: number;
  readonly seq: number;
  readonly state: OutboxState;
}

/** Per endpoint, how many webhooks a limit moved to dead. */
export type Expired = Map<string, number>;

/** Who holds a claim, and until when (the caller's clock). */
export interface Lease {
  /** The claiming process, unique per run (host, pid, a random part): a restart is a new holder. */
  readonly holder: string;
  /** After this, a shared backend hands the webhook to the next claim (sent again, same webhook-id). */
  readonly until: number;
}

/** An attempt that finished, to be recorded with its decision (schedule.ts). */
export interface FinishedAttempt {
  /** The claimed row as the claim returned it (its attempt number and start identify the attempt). */
  readonly webhook: Pick<OutboxRow, 'id' | 'lane' | 'attempts' | 'step' | 'updatedAt'>;
  /** The claim's lease: a backend refuses to record an attempt whose lease another holder took over. */
  readonly lease: Lease;
  readonly attempt: AttemptRecord;
  readonly decision: Decision;
}

/** Per endpoint, how many lane heads the worker can send now (its free slots; 0: none, but say when one is due). */
export interface ClaimAsk {
  readonly endpoint: string;
  readonly limit: number;
}

/** Everything one pump writes, as one transaction (the worker's "one commit per pump", issue #7). */
export interface Pump {
  /** PBX events' webhooks, one array per event, in event order: each event's all or none. */
  readonly enqueue: ReadonlyArray<readonly WebhookRequest[]>;
  /** Attempts that finished since the last pump. */
  readonly finished: readonly FinishedAttempt[];
  /** What changed of this PBX's live calls: key → JSON text, undefined: gone (issue #14 item 2; LIVE_CALL_KEY_PREFIX). */
  readonly liveState: ReadonlyMap<string, string | undefined>;
  /** Claims to make after the writes above (empty while stopping), all for `holder` until now + leaseMs. */
  readonly claims: readonly ClaimAsk[];
  readonly holder: string;
  /** Longer than an attempt can take (delivery timeout + margin), so a live holder never loses a claim. */
  readonly leaseMs: number;
  /**
   * Claims of `holder` still in flight whose lease runs out soon (row ids): held until now + leaseMs
   * again, so that an answer recorded late (a slow commit, a starved process) is still this
   * holder's. A backend that stores no leases (SQLite: one sending process) ignores it.
   */
  readonly renew?: readonly number[];
}

/** What a pump committed. */
export interface PumpResult {
  /** Lane heads claimed, in the order to start them (each endpoint's fresh lanes first, then oldest due). */
  readonly claimed: readonly OutboxRow[];
  /** The lease of every claim above (one per pump). */
  readonly lease: Lease;
  /** Events of `enqueue` (by index) that could not be stored, and why; the rest were. Never expected. */
  readonly lostEvents: ReadonlyArray<readonly [index: number, error: unknown]>;
  /** Attempts of `finished` (by index) that could not be recorded (a lease lost, a row deleted), and why. */
  readonly unrecorded: ReadonlyArray<readonly [index: number, error: unknown]>;
  /** Endpoints whose claims failed for a reason other than the store being unavailable (logged; tried next pump). */
  readonly unclaimed: ReadonlyArray<readonly [endpoint: string, error: unknown]>;
  /**
   * Per endpoint of `claims`, when its next claimable head is due (absent: none); the worker sleeps
   * until then. For an endpoint that got every claim it asked for, a backend may say `now` without
   * reading (PostgreSQL: its claim just scanned that index); the worker's next pump finds out.
   */
  readonly nextDueAt: ReadonlyMap<string, number>;
}

export interface OutboxStore {
  /** Where the outbox is, for logs and the CLI's answers: a file, or a URL without its password. */
  readonly location: string;
  /** The PBX this process enqueues for (row `pbx`, the live state's owner). */
  readonly pbx: string;

  /**
   * One transaction: enqueue, record finished attempts, save the live state, then claim. Either it
   * all commits, or the promise rejects and nothing of it was written (the worker keeps it all and
   * tries again). A single event or attempt that cannot be written (a lease lost, a bug) does not
   * undo the others: it is reported in `lostEvents` / `unrecorded` and the rest commits. Requests
   * start only after this resolves, so no attempt is ever made for a claim that was not committed.
   * A lane never has two heads in flight; within a lane, order never changes, only which lanes of an
   * endpoint are served first.
   */
  commitPump(pump: Pump, now: number): Promise<PumpResult>;

  /**
   * Whether an error this store threw means "cannot be written now" (disk full, I/O error, lock
   * timeout, connection lost) rather than "this write is wrong": such a failure is retried later
   * with nothing given up (issue #14 item 3).
   */
  isUnavailable(err: unknown): boolean;

  /**
   * Start-up: in_flight webhooks whose attempt can no longer finish go back to pending (same
   * webhook-id, same step), each with an `interrupted` attempt row. With one sending process that is
   * every in_flight row; a shared backend takes only those whose lease expired by `now`. The count.
   */
  recover(now: number): Promise<number>;

  /** Every endpoint's saved health (failing, paused, next probe): a restart carries pauses on. */
  health(): Promise<Map<string, EndpointHealth>>;
  /** Saves one endpoint's health; HEALTHY removes it. Calls for one endpoint apply in call order. */
  saveHealth(endpoint: string, h: EndpointHealth): Promise<void>;
  /**
   * A paused endpoint answered its probe: all its failed_waiting webhooks are due at `now`, each
   * still behind its lane's earlier ones. How many were made due.
   */
  resumeEndpoint(endpoint: string, now: number): Promise<number>;

  /** Webhooks not yet delivered or dead (pending, in_flight, failed_waiting): cheap, read every scrape. */
  depth(): Promise<number>;
  /** Webhooks per state, every state present (0 when none): cheap, read every scrape. */
  stateCounts(): Promise<Map<OutboxState, number>>;

  /** max_age: undelivered (not in flight) webhooks created before `cutoff` move to dead. Per endpoint, how many. */
  expireOlderThan(cutoff: number, now: number): Promise<Expired>;
  /** max_rows: beyond `maxRows` undelivered, the oldest (not in flight) move to dead. Per endpoint, how many. */
  enforceMaxRows(maxRows: number, now: number): Promise<Expired>;
  /** Deletes delivered or dead webhooks (with their attempts) last changed before `before`. How many. */
  purge(state: 'delivered' | 'dead', before: number, sel?: Omit<Selection, 'states'>): Promise<number>;
  /**
   * Forgets lanes with no webhooks left, idle since `before` (so some LANE_TOUCH_MS later than that
   * at most) and whose call is not live (LIVE_CALL_KEY_PREFIX). A lane outlives its rows while its
   * call may still send, so webhook-sequence never starts over for a call.
   */
  forgetIdleLanes(before: number): Promise<number>;

  /** `pbxhook outbox retry`, resend: dead or failed_waiting webhooks → pending, a fresh schedule (step 0), due now. */
  retry(sel: Selection, now: number): Promise<number>;
  /** "Retry this lane now": its head, waiting for a retry, is due at `now`; its step kept. 0 or 1. */
  retryLaneNow(lane: LaneRef, now: number): Promise<number>;

  /** Rows matching `sel`, newest (highest id) first, at most `limit`. */
  list(sel: Selection, limit: number): Promise<OutboxRow[]>;
  /** The last `limit` webhooks to die, most recent first (the status page). */
  recentDead(limit: number): Promise<OutboxRow[]>;
  /** Per endpoint and state, with the oldest created_at (`pbxhook outbox stats`, orphan warnings); sorted bytewise by endpoint, then state. */
  counts(): Promise<StateCount[]>;
  /** Every attempt of a webhook by number; one in flight is last, with outcome null. */
  attemptsOf(id: number): Promise<AttemptRow[]>;
  /** An endpoint's last delivery, last failed attempt, attempts started since `since`, dead count. */
  endpointActivity(endpoint: string, since: number): Promise<EndpointActivity>;
  /** A lane's webhooks in seq order with their states (a call's journey). */
  laneRows(lane: LaneRef): Promise<Array<{ id: number; state: OutboxState; summary: string }>>;
  /**
   * Each lane's head (undefined: nothing undelivered), in the order asked: a page of webhooks asks
   * for all its lanes at once, one read, not one per row (a round trip each on a networked backend).
   */
  laneHeads(lanes: readonly LaneRef[]): Promise<Array<LaneHead | undefined>>;
  /** Per endpoint, undelivered webhooks and the oldest created_at among them (the console). */
  undeliveredByEndpoint(): Promise<Map<string, { depth: number; oldestCreatedAt: number }>>;
  /**
   * Per endpoint, created_at of its oldest undelivered webhook (a gauge read every scrape: cheap).
   * SQLite takes the first enqueued (lowest id) as the oldest; PostgreSQL, whose rows come from
   * several hosts' clocks, the lowest created_at. They differ only when a clock stepped back.
   */
  oldestUndelivered(): Promise<Map<string, number>>;

  /** This PBX's live state as the last commit left it: key → JSON text, sorted bytewise by key (issue #14 item 2). */
  liveState(): Promise<Array<[string, string]>>;

  /** Closes the connection(s); nothing may be called after. */
  close(): Promise<void>;
}
