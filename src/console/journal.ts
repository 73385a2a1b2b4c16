/**
 * A call's journey (issue #16 item 4): the steps of live and recent calls in time order (DID, IVR,
 * queue with its wait, each leg rung and how it ended, answer, holds, transfers, voicemail,
 * recording, end), each with the webhooks rendered for it per endpoint. In memory and bounded: at most
 * `maxCalls` calls, an ended call kept `keepMs`, at most MAX_STEPS steps each. Time is passed in.
 *
 * A step remembers only which endpoints got how many webhooks; their rows and delivery states are
 * read from the outbox when a journey is shown (a lane's rows in sequence order match its steps'
 * webhooks in order).
 */
import type { CallEvent, LifecycleEvent } from '../core/lifecycle.js';
import type { CallView } from '../core/model.js';

const MAX_STEPS = 200;
const MAX_RESULTS = 20;

export interface JourneyStep {
  readonly at: number;
  /** A lifecycle event's type, or a hold (no webhook schema renders holds; the journey shows them). */
  readonly type: CallEvent['type'] | 'hold' | 'unhold';
  readonly text: string;
  /** The endpoint of each webhook rendered for this step, in order (their rows tell the rest). */
  readonly webhooks: readonly string[];
}

interface Journey {
  id: string;
  direction: string;
  customer: string;
  did: string;
  startedAt: number;
  endedAt: number | undefined;
  /** Numbers to search by: the customer, the DID, extensions that rang or called, routes. */
  numbers: Set<string>;
  steps: JourneyStep[];
}

export interface JourneyView {
  readonly id: string;
  readonly direction: string;
  readonly customer: string;
  readonly did: string;
  readonly startedAt: number;
  readonly endedAt: number | null;
  readonly steps: ReadonlyArray<Omit<JourneyStep, 'webhooks'> & { webhooks: WebhookOfStep[] }>;
}

export interface WebhookOfStep {
  readonly endpoint: string;
  /** The schema's event name, from the outbox row; null once the row is gone (purged). */
  readonly event: string | null;
  readonly id: number | null;
  readonly state: string | null;
}

/** The outbox rows of one call at one endpoint, in sequence order (OutboxStore.laneRows). */
export type LaneRows = (endpoint: string, callId: string) => Promise<ReadonlyArray<Row>>;
type Row = { readonly id: number; readonly state: string; readonly summary: string };

export class CallJournal {
  private readonly calls = new Map<string, Journey>();

  constructor(
    private readonly maxCalls: number,
    private readonly keepMs: number,
    private readonly laneRows?: LaneRows,
  ) {}

  get size(): number {
    return this.calls.size;
  }

  /** One lifecycle event and the endpoints of the webhooks rendered for it. */
  record(e: LifecycleEvent, webhooks: readonly string[]): void {
    if (e.type === 'message') return;
    let j = this.calls.get(e.call.id);
    if (j === undefined) {
      j = { id: e.call.id, direction: '', customer: '', did: '', startedAt: e.call.startedAt, endedAt: undefined, numbers: new Set(), steps: [] };
      this.calls.set(e.call.id, j);
      // Bounded on every new call, in O(1): the oldest started go first. Ended calls past keepMs go
      // when the journal is read (evict), which memory does not need, since maxCalls bounds it.
      for (const oldest of this.calls.keys()) {
        if (this.calls.size <= this.maxCalls) break;
        this.calls.delete(oldest);
      }
    }
    j.direction = e.call.direction;
    j.customer = e.call.customerNumber;
    j.did = e.call.did;
    for (const n of numbersOf(e)) if (n !== '') j.numbers.add(n);
    if (e.type === 'call.ended') j.endedAt = e.at;
    if (j.steps.length < MAX_STEPS) j.steps.push({ at: e.at, type: e.type, text: describe(e), webhooks });
  }

  /** A phone of a journaled call put it on hold (`held`) or took it back. */
  hold(callId: string, party: string, held: boolean, at: number): void {
    const j = this.calls.get(callId);
    if (j === undefined || j.steps.length >= MAX_STEPS) return;
    j.steps.push({ at, type: held ? 'hold' : 'unhold', text: held ? `${party} put the call on hold` : `${party} took the call back`, webhooks: [] });
  }

  /** Calls matching `q` (a call id, or part of a number or extension), newest first; all recent ones for "". */
  async search(q: string, now: number): Promise<JourneyView[]> {
    this.evict(now);
    const needle = q.trim();
    const found: Journey[] = [];
    for (const j of [...this.calls.values()].reverse()) {
      if (found.length >= MAX_RESULTS) break;
      if (needle === '' || j.id === needle || [...j.numbers].some((n) => n.includes(needle))) found.push(j);
    }
    // Each call's rows read together (in the search's order), then the views built from them.
    return Promise.all(found.map(async (j) => this.view(j, await this.rowsOf(j))));
  }

  /** Per endpoint the call sent to, its rows in sequence order. */
  private async rowsOf(j: Journey): Promise<Map<string, readonly Row[]>> {
    const endpoints = [...new Set(j.steps.flatMap((s) => s.webhooks))];
    const lists = await Promise.all(endpoints.map((e) => this.laneRows?.(e, j.id) ?? []));
    return new Map(endpoints.map((e, i) => [e, lists[i]!]));
  }

  private view(j: Journey, lanes: ReadonlyMap<string, readonly Row[]>): JourneyView {
    // Per endpoint, the call's rows in order, handed out to the steps in the same order.
    const rows = new Map<string, { list: readonly Row[]; next: number }>();
    const rowFor = (endpoint: string) => {
      let r = rows.get(endpoint);
      if (r === undefined) {
        const list = lanes.get(endpoint) ?? [];
        // A journal that missed the call's first webhooks (a restart) aligns from the end.
        const sent = j.steps.reduce((n, s) => n + s.webhooks.filter((w) => w === endpoint).length, 0);
        r = { list, next: Math.min(0, list.length - sent) };
        rows.set(endpoint, r);
      }
      const row = r.next >= 0 ? r.list[r.next] : undefined;
      r.next++;
      return row;
    };
    return {
      id: j.id,
      direction: j.direction,
      customer: j.customer,
      did: j.did,
      startedAt: j.startedAt,
      endedAt: j.endedAt ?? null,
      steps: j.steps.map((s) => ({
        ...s,
        webhooks: s.webhooks.map((endpoint) => {
          const row = rowFor(endpoint);
          return { endpoint, event: row?.summary ?? null, id: row?.id ?? null, state: row?.state ?? null };
        }),
      })),
    };
  }

  /** Ended calls past keepMs go (read time: a search walks every call anyway). */
  private evict(now: number): void {
    for (const [id, j] of this.calls) if (j.endedAt !== undefined && now - j.endedAt > this.keepMs) this.calls.delete(id);
  }
}

function numbersOf(e: CallEvent): string[] {
  const c: CallView = e.call;
  const out = [c.customerNumber, c.did, c.originExtension];
  if ('leg' in e) out.push(e.leg.party.id);
  if (e.type === 'route.entered') out.push(e.route.number);
  return out;
}

const at = (ms: number) => `${Math.round(ms / 1000)} s`;

/** The step in an admin's words. */
export function describe(e: CallEvent): string {
  const c = e.call;
  switch (e.type) {
    case 'call.started':
      return c.direction === 'inbound' ? `call from ${c.customerNumber}${c.did ? ` to DID ${c.did}` : ''}` : `${c.direction} call from ${c.originExtension || c.customerNumber}`;
    case 'route.entered':
      return `${e.route.role === 'ivr' ? 'IVR' : e.route.role === 'ringgroup' ? 'ring group' : e.route.role} ${e.route.number}`;
    case 'leg.dialed':
      return `dialling ${e.leg.party.id}${e.leg.via ? ` (${e.leg.via.role} ${e.leg.via.number})` : ''}`;
    case 'leg.ringing':
      return `${e.leg.party.id} ringing`;
    case 'leg.answered': {
      const queued = [...c.routes].reverse().find((r) => r.role === 'queue' && r.at <= e.at);
      return `answered by ${e.leg.party.id}${queued ? ` after ${at(e.at - queued.at)} in queue ${queued.number}` : ''}`;
    }
    case 'leg.ended':
      return `${e.leg.party.id}: ${e.leg.disposition ?? 'ended'}`;
    case 'segment.ended':
      return e.segment.endedBy === 'blind-transfer' || e.segment.endedBy === 'attended-transfer'
        ? `${e.segment.endedBy.replace('-', ' ')} from ${e.segment.user}`
        : `talk with ${e.segment.user} ended`;
    case 'voicemail.left':
      return `voicemail left in ${e.mailbox}`;
    case 'recording.ready':
      return `recording of ${e.segment.user}: ${e.segment.recordings.length} file${e.segment.recordings.length === 1 ? '' : 's'}`;
    case 'call.ended':
      return `call ended: ${c.disposition ?? 'ended'}${c.endReason && c.endReason !== 'hangup' ? ` (${c.endReason})` : ''}`;
  }
}
