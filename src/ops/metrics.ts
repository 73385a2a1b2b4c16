import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** A figure the outbox store answers later (store.ts is asynchronous), or one at hand. */
type Awaitable<T> = T | Promise<T>;

/** Where the numbers come from: read at scrape time, so the hot path only bumps plain counters. */
export interface MetricSources {
  pbxConnected(): boolean;
  eventsByType(): ReadonlyMap<string, number>;
  framesSkipped(): Readonly<Record<string, number>>;
  calls(): { readonly live: number; readonly started: number; readonly ended: number; readonly timedOut: number; readonly resynced: number };
  /** Endpoint → outcome → count (delivered, failed, dead, retried…). */
  webhooks(): ReadonlyMap<string, Readonly<Record<string, number>>>;
  /** Outbox state → rows. */
  outbox(): Awaitable<ReadonlyMap<string, number>>;
  /** Webhooks not yet delivered nor dead (pending, in flight, waiting to retry). */
  outboxDepth(): number;
  /** True while outbox commits fail (a full disk). */
  outboxWriteFailing?(): boolean;
  /** Endpoint → ok, failing, paused or disabled (issue #16 item 6): every endpoint the outbox knows. */
  endpointStates?(): ReadonlyMap<string, string>;
  /** Endpoint → seconds since its oldest undelivered webhook was queued; 0 when it owes nothing. */
  oldestUndelivered?(): Awaitable<ReadonlyMap<string, number>>;
  /** Endpoint → webhooks that became dead since start (attempts and outbox limits). */
  deadLetters?(): ReadonlyMap<string, number>;
  /** Endpoints with `only_*` keys → webhooks held now, and dropped past the per-call bound (issue #16 item 5). */
  routing?(): ReadonlyMap<string, { readonly heldNow: number; readonly heldDropped: number }>;
  /** `standby` while another daemon holds this PBX's lease (issue #17 item 3). */
  role?(): 'active' | 'standby';
  /**
   * This PBX's name when its outbox is shared (issue #17): every sample then carries `pbx="…"`, so
   * a fleet's series stay apart wherever they are scraped into. Absent: no such label.
   */
  readonly pbx?: string;
}

/** The roles pbxhook_pbx_role reports. */
export const ROLES = ['active', 'standby'] as const;

/** The states pbxhook_endpoint_state reports, each endpoint 1 in one of them and 0 in the others. */
export const ENDPOINT_STATES = ['ok', 'failing', 'paused', 'disabled'] as const;

/**
 * A counter whose value is owned elsewhere (a stats object): each scrape adds the difference
 * since the last one, so Prometheus sees a monotonic counter without a second bookkeeping.
 */
function mirroredCounter(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  read: () => Iterable<readonly [Record<string, string>, number]>,
): void {
  const last = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      for (const [labels, value] of read()) {
        const key = JSON.stringify(labels);
        const delta = value - (last.get(key) ?? 0);
        // A zero still creates the series: an alert on `failed` must see 0, not nothing.
        if (delta > 0 || !last.has(key)) this.inc(labels, Math.max(delta, 0));
        last.set(key, value);
      }
    },
  });
}

export interface Metrics {
  readonly registry: Registry;
  /** Seconds from a webhook being queued to its 2xx, per endpoint. */
  readonly deliveryLatency: Histogram<'endpoint'>;
}

export function createMetrics(src: MetricSources): Metrics {
  const registry = new Registry();
  if (src.pbx !== undefined) registry.setDefaultLabels({ pbx: src.pbx });
  // Two gauges read the outbox's counts; a scrape collects them together, so they share one read
  // (on PostgreSQL a count over the whole table).
  let counting: Promise<ReadonlyMap<string, number>> | undefined;
  const outboxCounts = (): Promise<ReadonlyMap<string, number>> =>
    (counting ??= Promise.resolve(src.outbox()).finally(() => (counting = undefined)));
  collectDefaultMetrics({ register: registry, prefix: 'pbxhook_' }); // pbxhook_process_cpu_seconds_total, pbxhook_nodejs_…
  new Gauge({
    name: 'pbxhook_pbx_connected',
    help: '1 while the AMI/ESL connection is up and logged in',
    registers: [registry],
    collect() {
      this.set(src.pbxConnected() ? 1 : 0);
    },
  });
  if (src.role !== undefined) {
    const role = src.role;
    // One series per role, 1 for the daemon's now: `pbxhook_pbx_role{role="active"}` summed per pbx
    // says how many daemons follow it (1 is right, 0 is an outage), and alerts can leave standbys out.
    new Gauge({
      name: 'pbxhook_pbx_role',
      help: 'This daemon\'s role for its PBX (standby: another daemon holds the lease), 1 for the current one',
      labelNames: ['role'],
      registers: [registry],
      collect() {
        for (const r of ROLES) this.set({ role: r }, role() === r ? 1 : 0);
      },
    });
  }
  mirroredCounter(registry, 'pbxhook_pbx_events_total', 'PBX-neutral events in, by type', ['type'], function* () {
    for (const [type, n] of src.eventsByType()) yield [{ type }, n] as const;
  });
  mirroredCounter(registry, 'pbxhook_frames_skipped_total', 'PBX frames not turned into events, by reason', ['reason'], function* () {
    for (const [reason, n] of Object.entries(src.framesSkipped())) yield [{ reason }, n] as const;
  });
  new Gauge({
    name: 'pbxhook_calls_live',
    help: 'Calls the tracker is following now',
    registers: [registry],
    collect() {
      this.set(src.calls().live);
    },
  });
  mirroredCounter(registry, 'pbxhook_calls_total', 'Calls seen, by how far they got', ['outcome'], function* () {
    const c = src.calls();
    yield [{ outcome: 'started' }, c.started] as const;
    yield [{ outcome: 'ended' }, c.ended] as const;
    yield [{ outcome: 'idle_timeout' }, c.timedOut] as const;
    yield [{ outcome: 'resync' }, c.resynced] as const;
  });
  mirroredCounter(registry, 'pbxhook_webhooks_total', 'Webhooks by endpoint and outcome', ['endpoint', 'outcome'], function* () {
    for (const [endpoint, byOutcome] of src.webhooks()) {
      for (const [outcome, n] of Object.entries(byOutcome)) yield [{ endpoint, outcome }, n] as const;
    }
  });
  new Gauge({
    name: 'pbxhook_outbox_webhooks',
    help: 'Webhooks in the durable outbox, by state',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const counts = await outboxCounts();
      this.reset();
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  // Depth and dead letters on their own: the two numbers an alert rule wants without a sum().
  new Gauge({
    name: 'pbxhook_outbox_write_failing',
    help: '1 while the outbox cannot be written (disk full, I/O error): nothing is dropped, delivery waits',
    registers: [registry],
    collect() {
      this.set(src.outboxWriteFailing?.() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'pbxhook_outbox_depth',
    help: 'Webhooks waiting to be delivered (pending, in flight, retrying)',
    registers: [registry],
    collect() {
      this.set(src.outboxDepth());
    },
  });
  new Gauge({
    name: 'pbxhook_dead_letters',
    help: 'Webhooks given up on, kept in the outbox for `pbxhook outbox retry`',
    registers: [registry],
    async collect() {
      this.set((await outboxCounts()).get('dead') ?? 0);
    },
  });
  // Issue #16 item 6: the series config/ alert rules are written on; names are an interface.
  new Gauge({
    name: 'pbxhook_endpoint_state',
    help: 'Endpoint state: 1 for the current one of ok, failing, paused, disabled; 0 for the others',
    labelNames: ['endpoint', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [endpoint, now] of src.endpointStates?.() ?? []) {
        for (const state of ENDPOINT_STATES) this.set({ endpoint, state }, state === now ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'pbxhook_outbox_oldest_undelivered_seconds',
    help: 'Age of the oldest webhook an endpoint has not received yet (pending, in flight, retrying); 0 when it owes nothing',
    labelNames: ['endpoint'],
    registers: [registry],
    async collect() {
      const oldest = (await src.oldestUndelivered?.()) ?? [];
      this.reset();
      for (const [endpoint, seconds] of oldest) this.set({ endpoint }, seconds);
    },
  });
  mirroredCounter(registry, 'pbxhook_dead_letters_total', 'Webhooks that became dead, by endpoint (given up on, or an outbox limit)', ['endpoint'], function* () {
    for (const [endpoint, n] of src.deadLetters?.() ?? []) yield [{ endpoint }, n] as const;
  });
  // Routing by number (issue #16 item 5): a call's webhooks held until it matches an endpoint.
  new Gauge({
    name: 'pbxhook_routing_held',
    help: 'Webhooks held for calls not yet known to match the endpoint (only_* keys)',
    labelNames: ['endpoint'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [endpoint, r] of src.routing?.() ?? []) this.set({ endpoint }, r.heldNow);
    },
  });
  mirroredCounter(registry, 'pbxhook_routing_held_dropped_total', 'Webhooks dropped past the per-call bound while their call was not yet known to match', ['endpoint'], function* () {
    for (const [endpoint, r] of src.routing?.() ?? []) yield [{ endpoint }, r.heldDropped] as const;
  });
  const deliveryLatency = new Histogram({
    name: 'pbxhook_delivery_latency_seconds',
    help: 'Time from a webhook being queued to its successful delivery',
    labelNames: ['endpoint'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
    registers: [registry],
  });
  return { registry, deliveryLatency };
}
