/**
 * What every outbox backend must do (issue #17 item 1): one behaviour suite over the store
 * interface (src/deliver/store.ts), run against SQLite (test/60) and PostgreSQL. It speaks only
 * the interface, with a fake clock passed in as `now`, so a backend passes it or differs for real.
 *
 * A backend's harness opens a fresh outbox per test and can open the same one again as a restarted
 * process would (the old store abandoned, as kill -9 leaves it, not closed).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { OutboxStore } from '../../src/deliver/store.js';
import { IllegalTransitionError } from '../../src/deliver/outbox-state.js';
import { HOLDER, LEASE_MS, T0, bodies, claim, enqueue, finished, http500, pumpOf, req, sendAll } from './outboxSteps.js';
import { describeOperatorReads } from './outboxStoreOperators.js';

export interface StoreHarness {
  /** A fresh, empty outbox serving PBX `pbx`. */
  open(pbx?: string): Promise<OutboxStore>;
  /** The outbox of the last open(), opened again as a restarted process opens it. */
  reopen(): Promise<OutboxStore>;
  /** Closes what is still open and removes the outbox. */
  dispose(): Promise<void>;
}

export function describeOutboxStore(name: string, harness: () => StoreHarness): void {
  describe(`outbox store: ${name}`, () => {
    let h: StoreHarness;
    afterEach(async () => {
      await h?.dispose();
    });
    const open = (pbx?: string) => {
      h = harness();
      return h.open(pbx);
    };

    it('numbers each lane 1, 2, 3 and claims only its head; lanes and endpoints apart', async () => {
      const s = await open('pbx-a');
      await enqueue(s, T0, [req('A', 'a1'), req('A', 'a2'), req('B', 'b1')], [req('A', 'a1', 'other')]);
      const rows = await s.list({}, 10);
      expect(rows.map((r) => [r.body, r.seq, r.pbx])).toEqual([['a1', 1, 'pbx-a'], ['b1', 1, 'pbx-a'], ['a2', 2, 'pbx-a'], ['a1', 1, 'pbx-a']]);
      expect(new Set(rows.map((r) => r.webhookId)).size).toBe(4);
      const first = await s.commitPump(pumpOf({ claims: [{ endpoint: 'crm', limit: 10 }] }), T0);
      expect(bodies(first.claimed).sort()).toEqual(['a1', 'b1']);
      expect(first.claimed.find((r) => r.body === 'a1')).toMatchObject({ state: 'in_flight', attempts: 1, seq: 1, callId: 'A', updatedAt: T0 });
      expect(first.lease).toEqual({ holder: HOLDER, until: T0 + LEASE_MS });
      expect(await claim(s, T0), 'a2 waits behind a1, b1 is in flight').toEqual([]);
      const a1 = first.claimed.find((r) => r.body === 'a1')!;
      const r = await s.commitPump(pumpOf({ finished: [finished(a1, first.lease, { kind: 'delivered' })], claims: [{ endpoint: 'crm', limit: 10 }] }), T0 + 10);
      expect(bodies(r.claimed), 'the same pump records a1 and claims the next of its lane').toEqual(['a2']);
      expect(bodies(await claim(s, T0, 10, 'other'))).toEqual(['a1']);
    });

    it('keeps every lane in enqueue order across pumps and many lanes', async () => {
      const s = await open();
      const calls = ['A', 'B', 'C', 'D', 'E'];
      for (let round = 1; round <= 4; round++) await enqueue(s, T0 + round, calls.map((c) => req(c, `${c}${round}`)));
      const seen = new Map<string, string[]>();
      for (let at = T0 + 10, i = 0; i < 10; i++, at++) {
        for (const b of await sendAll(s, at, { kind: 'delivered' })) seen.set(b[0]!, [...(seen.get(b[0]!) ?? []), b]);
      }
      for (const c of calls) expect(seen.get(c), `lane ${c}`).toEqual([1, 2, 3, 4].map((n) => `${c}${n}`));
      expect(await s.depth()).toBe(0);
    });

    it('bounds a claim by its limit; fresh lanes first, then the oldest due', async () => {
      const s = await open();
      await enqueue(s, T0 + 2, [req('A', 'a1')]);
      await enqueue(s, T0, [req('B', 'b1')]);
      await enqueue(s, T0 + 1, [req('C', 'c1')]);
      expect(bodies(await claim(s, T0 + 5, 2))).toEqual(['b1', 'c1']);
      const later = T0 + 3_600_000;
      // Another endpoint: the claims above are an hour old by then, and a shared backend takes them back.
      await enqueue(s, T0, [req('old1', 'o1', 'late'), req('old2', 'o2', 'late')]);
      await enqueue(s, later, [req('live', 'l1', 'late')]);
      await enqueue(s, T0, [req('old1', 'o1-next', 'late')]);
      expect(bodies(await claim(s, later, 1, 'late')), 'a live call before an hour of backlog').toEqual(['l1']);
      expect(bodies(await claim(s, later, 10, 'late')), 'then the backlog, oldest first, each lane in order').toEqual(['o1', 'o2']);
    });

    it('says when each endpoint asked for has its next head due: a limit of 0 claims nothing but asks; more due is due now', async () => {
      const s = await open();
      await enqueue(s, T0, [req('A', 'a1'), req('B', 'b1'), req('C', 'c1', 'other')]);
      const none = await s.commitPump(pumpOf({ claims: [{ endpoint: 'crm', limit: 0 }, { endpoint: 'other', limit: 0 }, { endpoint: 'idle', limit: 0 }] }), T0 + 1);
      expect(none.claimed).toEqual([]);
      expect(none.nextDueAt).toEqual(new Map([['crm', T0], ['other', T0]]));
      const one = await s.commitPump(pumpOf({ claims: [{ endpoint: 'crm', limit: 1 }] }), T0 + 1);
      expect(one.claimed).toHaveLength(1);
      // A backend may say "now" without reading (its claim just read that index): the worker pumps again.
      expect(one.nextDueAt.get('crm'), 'b1 or a1 is still due').toBeLessThanOrEqual(T0 + 1);
    });

    it('claims a webhook once: a claimed head is nobody else’s until it is finished', async () => {
      const s = await open();
      await enqueue(s, T0, [req('A', 'a1'), req('B', 'b1'), req('C', 'c1')]);
      const [x, y] = await Promise.all([claim(s, T0, 2), claim(s, T0, 2)]);
      const ids = [...x!, ...y!].map((r) => r.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids).toHaveLength(3);
    });

    it('retries on the schedule: failed_waiting until next_at, attempts counted, the step kept', async () => {
      const s = await open();
      await enqueue(s, T0, [req('A', 'a1'), req('A', 'a2')]);
      expect(await sendAll(s, T0, { kind: 'retry', at: T0 + 5_000, step: 1 }, http500)).toEqual(['a1']);
      const [waiting] = await s.list({ states: ['failed_waiting'] }, 10);
      expect(waiting).toMatchObject({ body: 'a1', step: 1, nextAt: T0 + 5_000, lastStatus: 500, lastError: 'crm: HTTP 500' });
      const early = await s.commitPump(pumpOf({ claims: [{ endpoint: 'crm', limit: 10 }] }), T0 + 4_999);
      expect(early.claimed).toEqual([]);
      expect(early.nextDueAt.get('crm'), 'the worker sleeps until then').toBe(T0 + 5_000);
      const again = await claim(s, T0 + 5_000);
      expect(again.map((r) => [r.body, r.attempts, r.step])).toEqual([['a1', 2, 1]]);
    });

    it('a dead webhook no longer holds its lane; its attempts tell the story', async () => {
      const s = await open();
      await enqueue(s, T0, [req('A', 'a1'), req('A', 'a2')]);
      await sendAll(s, T0, { kind: 'retry', at: T0 + 5_000, step: 1 }, { ...http500, retryAfterMs: 5_000 });
      await sendAll(s, T0 + 5_000, { kind: 'dead', reason: 'PBXHOOK_RETRIES_USED_UP: gone' }, http500);
      expect(bodies(await claim(s, T0 + 5_000))).toEqual(['a2']);
      const [dead] = await s.list({ states: ['dead'] }, 10);
      expect(dead).toMatchObject({ body: 'a1', lastError: 'PBXHOOK_RETRIES_USED_UP: gone' });
      const attempts = await s.attemptsOf(dead!.id);
      expect(attempts.map((a) => [a.n, a.startedAt, a.status, a.outcome, a.retryAfterMs])).toEqual([[1, T0, 500, 'retry', 5_000], [2, T0 + 5_000, 500, 'dead', null]]);
      expect(attempts[0]!.response).toBe('down for maintenance');
      expect((await s.recentDead(5)).map((r) => r.body)).toEqual(['a1']);
    });

    it('requeue (shutdown cut the attempt off): pending again, due at once, same step', async () => {
      const s = await open();
      await enqueue(s, T0, [req('A', 'a1')]);
      await sendAll(s, T0, { kind: 'requeue' }, { ...http500, status: undefined, errorCode: 'PBXHOOK_HTTP_ABORTED' });
      expect((await s.list({}, 1))[0]).toMatchObject({ state: 'pending', step: 0 });
      expect(bodies(await claim(s, T0 + 1))).toEqual(['a1']);
    });

    it('refuses to record an attempt twice and keeps the rest of the pump', async () => {
      const s = await open();
      await enqueue(s, T0, [req('A', 'a1'), req('B', 'b1')]);
      const r = await s.commitPump(pumpOf({ claims: [{ endpoint: 'crm', limit: 10 }] }), T0);
      const [a1, b1] = r.claimed;
      await s.commitPump(pumpOf({ finished: [finished(a1!, r.lease, { kind: 'delivered' })] }), T0);
      const twice = await s.commitPump(pumpOf({ finished: [finished(a1!, r.lease, { kind: 'delivered' }), finished(b1!, r.lease, { kind: 'delivered' })], enqueue: [[req('C', 'c1')]] }), T0);
      expect(twice.unrecorded.map(([i]) => i)).toEqual([0]);
      expect(twice.unrecorded[0]![1]).toBeInstanceOf(IllegalTransitionError);
      expect((await s.stateCounts()).get('delivered')).toBe(2);
      expect(await s.depth(), 'c1 was written with the pump').toBe(1);
    });

    it('writes each event’s webhooks all or none; one bad event does not lose the others', async () => {
      const s = await open();
      const bad = { ...req('A', 'a2'), headers: { x: 1n } as unknown as Record<string, string> }; // JSON cannot hold a bigint
      const r = await enqueue(s, T0, [req('A', 'a1'), bad], [req('B', 'b1')]);
      expect(r.lostEvents.map(([i]) => i)).toEqual([0]);
      expect(bodies(await s.list({}, 10))).toEqual(['b1']);
      await enqueue(s, T0, [req('A', 'a1')]);
      expect((await s.list({ endpoint: 'crm' }, 10)).find((x) => x.body === 'a1')?.seq, 'a lost event leaves no gap').toBe(1);
    });

    it('recovers after a crash: in-flight attempts pending again, same webhook-id, the step kept', async () => {
      const s = await open();
      await enqueue(s, T0, [req('A', 'a1'), req('A', 'a2')]);
      await sendAll(s, T0, { kind: 'retry', at: T0 + 5_000, step: 1 }, http500);
      const [inFlight] = await claim(s, T0 + 5_000); // attempt 2… and the process dies
      const after = await h.reopen();
      expect(await after.recover(T0 + 5_000 + LEASE_MS + 1)).toBe(1);
      const [row] = await claim(after, T0 + 5_000 + LEASE_MS + 1);
      expect(row).toMatchObject({ webhookId: inFlight!.webhookId, body: 'a1', step: 1, attempts: 3 });
      expect((await after.attemptsOf(row!.id)).map((a) => a.outcome)).toEqual(['retry', 'interrupted', null]);
    });

    it('saves and loads the live state with the pump', async () => {
      const s = await open();
      await s.commitPump(pumpOf({ liveState: new Map([['call:1', '{"a":1}'], ['call:2', '{"b":2}']]), enqueue: [[req('A', 'a1')]] }), T0);
      await s.commitPump(pumpOf({ liveState: new Map<string, string | undefined>([['call:1', undefined], ['call:2', '{"b":3}']]) }), T0 + 1);
      expect(await s.liveState()).toEqual([['call:2', '{"b":3}']]);
      const after = await h.reopen();
      expect(await after.liveState()).toEqual([['call:2', '{"b":3}']]);
    });

    it('keeps endpoint health across a restart; HEALTHY forgets it', async () => {
      const s = await open();
      await s.saveHealth('crm', { failingSince: T0, pausedAt: T0 + 1, nextProbeAt: T0 + 2 });
      await s.saveHealth('other', { failingSince: T0, pausedAt: null, nextProbeAt: null });
      await s.saveHealth('other', { failingSince: null, pausedAt: null, nextProbeAt: null });
      const after = await h.reopen();
      expect([...(await after.health())]).toEqual([['crm', { failingSince: T0, pausedAt: T0 + 1, nextProbeAt: T0 + 2 }]]);
    });

    describeOperatorReads(open);
  });
}
