/**
 * Which lanes may be tried next, kept in memory by the outbox store (outbox-store.ts). A lane is
 * one call at one endpoint; its head is its first undelivered webhook. Only heads are ever sent, so
 * a later webhook can never overtake an earlier one. The database stays the truth: the store
 * rebuilds this index from it at start-up and whenever another process wrote to it.
 *
 * Why in memory (issue #7): a `lanes.head_at` column cost two index writes and a subquery per
 * transition, about a third of the outbox's time per webhook.
 *
 * Claim order: lanes that became due in the last `freshMs` first, then the rest, each oldest due
 * first; after a CRM outage the backlog must not hold up the webhooks of calls happening now.
 */
import TinyQueue from 'tinyqueue';

export interface LaneHead {
  readonly lane: string;
  readonly endpoint: string;
  /** The head webhook's row id. */
  id: number;
  /** When the head may be tried; meaningless while in flight. */
  at: number;
  inFlight: boolean;
  /**
   * The lane's later undelivered webhooks as [id, due, id, due…], when every one of them was added
   * by this process since the lane last owed nothing; undefined when only the database knows.
   * Saves a query per delivered webhook (issue #7).
   */
  later: number[] | undefined;
  /** Where the unread part of `later` starts (a shared lane, e.g. 3CX messages, can queue thousands). */
  laterFrom: number;
  /** Bumped on every change, so queue entries of an older head are recognised and dropped. */
  version: number;
}

interface Entry {
  readonly head: LaneHead;
  readonly version: number;
  readonly at: number;
  /** Ties in `at` go first come, first served. */
  readonly order: number;
}

const byDue = (a: Entry, b: Entry) => a.at - b.at || a.order - b.order;

class EndpointQueues {
  /** Every due or waiting head (entries go stale instead of being removed). */
  all = new TinyQueue<Entry>([], byDue);
  /** Heads that were due, or will be, within `freshMs` of when they were set. */
  fresh = new TinyQueue<Entry>([], byDue);

  compact(): void {
    this.all = new TinyQueue(this.all.data.filter(isLive), byDue);
    this.fresh = new TinyQueue(this.fresh.data.filter(isLive), byDue);
  }
}

export class LaneHeads {
  private readonly heads = new Map<string, LaneHead>();
  private readonly queues = new Map<string, EndpointQueues>();
  private order = 0;

  constructor(private readonly freshMs: number) {}

  get(lane: string): LaneHead | undefined {
    return this.heads.get(lane);
  }

  /** The database says the lane's head is row `id`, due at `at` unless in flight; later ones unknown. */
  fromRow(lane: string, endpoint: string, id: number, at: number, inFlight: boolean, now: number): void {
    const head = this.headOf(lane, endpoint);
    head.id = id;
    head.later = undefined;
    head.laterFrom = 0;
    if (inFlight) this.setInFlight(head);
    else this.setDue(head, at, now);
  }

  /** A new webhook `id`, due at `at`: the head of a lane that owed nothing, else queued behind it. */
  append(lane: string, endpoint: string, id: number, at: number, now: number): void {
    const head = this.heads.get(lane);
    if (head === undefined) {
      const created = this.headOf(lane, endpoint);
      created.id = id;
      created.later = [];
      created.laterFrom = 0;
      this.setDue(created, at, now);
    } else {
      head.later?.push(id, at);
    }
  }

  /** The head is being attempted: not claimable until it is finished. */
  claimed(lane: string): void {
    const head = this.heads.get(lane);
    if (head !== undefined) this.setInFlight(head);
  }

  /** The head stays the head (a retry or a requeue), due at `at`. False when the lane is unknown here. */
  retryAt(lane: string, at: number, now: number): boolean {
    const head = this.heads.get(lane);
    if (head === undefined) return false;
    this.setDue(head, at, now);
    return true;
  }

  /** The head was delivered or is dead. False when the next head must be read from the database. */
  advance(lane: string, now: number): boolean {
    const head = this.heads.get(lane);
    if (head === undefined || head.later === undefined) return false;
    const { later } = head;
    if (head.laterFrom >= later.length) {
      this.idle(lane);
      return true;
    }
    head.id = later[head.laterFrom]!;
    const at = later[head.laterFrom + 1]!;
    head.laterFrom += 2;
    if (head.laterFrom >= 1024 && head.laterFrom * 2 >= later.length) {
      head.later = later.slice(head.laterFrom);
      head.laterFrom = 0;
    }
    this.setDue(head, at, now);
    return true;
  }

  /**
   * The lowest row id among the heads: a lane's rows are numbered in the order they were added, so
   * every row below it is delivered or dead. Undefined when no lane owes anything.
   */
  oldestId(): number | undefined {
    let oldest: number | undefined;
    for (const head of this.heads.values()) if (oldest === undefined || head.id < oldest) oldest = head.id;
    return oldest;
  }

  /** Per endpoint, its oldest lane head's row id (ids grow with time): the oldest webhook it owes. */
  oldestIdByEndpoint(): Map<string, number> {
    const out = new Map<string, number>();
    for (const head of this.heads.values()) {
      const known = out.get(head.endpoint);
      if (known === undefined || head.id < known) out.set(head.endpoint, head.id);
    }
    return out;
  }

  /** The lane owes nothing. */
  idle(lane: string): void {
    const head = this.heads.get(lane);
    if (head === undefined) return;
    head.version++;
    this.heads.delete(lane);
  }

  /**
   * Up to `limit` heads of `endpoint` due by `now`, in claim order. The caller must change each one
   * (claimed, fromRow or idle) before asking again: their queue entries are used up.
   */
  due(endpoint: string, now: number, limit: number): LaneHead[] {
    const q = this.queues.get(endpoint);
    const out: LaneHead[] = [];
    if (q === undefined) return out;
    for (const queue of [q.fresh, q.all]) {
      const oldest = queue === q.fresh ? now - this.freshMs : -Infinity;
      while (out.length < limit) {
        const e = queue.peek();
        if (e === undefined || (isLive(e) && e.at > now)) break;
        queue.pop();
        // The same head is in both queues while unchanged: take it once.
        if (isLive(e) && e.at > oldest && !out.includes(e.head)) out.push(e.head);
      }
    }
    return out;
  }

  /** When the endpoint's earliest head not in flight is due; undefined when it has none. */
  nextDueAt(endpoint: string): number | undefined {
    const q = this.queues.get(endpoint);
    if (q === undefined) return undefined;
    let e = q.all.peek();
    while (e !== undefined && !isLive(e)) {
      q.all.pop();
      e = q.all.peek();
    }
    return e?.at;
  }

  clear(): void {
    for (const head of this.heads.values()) head.version++;
    this.heads.clear();
    this.queues.clear();
  }

  private headOf(lane: string, endpoint: string): LaneHead {
    let head = this.heads.get(lane);
    if (head === undefined) {
      head = { lane, endpoint, id: 0, at: 0, inFlight: false, later: undefined, laterFrom: 0, version: 0 };
      this.heads.set(lane, head);
    }
    return head;
  }

  private setInFlight(head: LaneHead): void {
    head.inFlight = true;
    head.version++;
  }

  /** `now` says whether the head counts as fresh. */
  private setDue(head: LaneHead, at: number, now: number): void {
    head.at = at;
    head.inFlight = false;
    head.version++;
    const q = this.queuesOf(head.endpoint);
    const entry: Entry = { head, version: head.version, at, order: this.order++ };
    q.all.push(entry);
    if (at > now - this.freshMs) q.fresh.push(entry);
    // Stale entries leave only when they reach the top; rebuild if they outnumber the live ones.
    if (q.all.length > 4 * this.heads.size + 1024) q.compact();
  }

  private queuesOf(endpoint: string): EndpointQueues {
    let q = this.queues.get(endpoint);
    if (q === undefined) {
      q = new EndpointQueues();
      this.queues.set(endpoint, q);
    }
    return q;
  }
}

/** The entry still describes its lane's current head, and that head is waiting to be tried. */
function isLive(e: Entry): boolean {
  return e.version === e.head.version && !e.head.inFlight;
}
