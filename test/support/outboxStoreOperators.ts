/**
 * The second half of the outbox store suite (test/support/outboxStoreSuite.ts): what happens to
 * the outbox besides the worker's pumps — an endpoint paused and resumed, the limits, housekeeping,
 * an operator's retries — and what the console, the metrics and `pbxhook outbox` read. Every
 * backend runs these very assertions (issue #17 item 1).
 */
import { describe, expect, it } from 'vitest';
import { LANE_TOUCH_MS, LIVE_CALL_KEY_PREFIX, type OutboxRow, type OutboxStore, RESPONSE_KEEP_CHARS } from '../../src/deliver/store.js';
import { HEALTHY } from '../../src/deliver/outbox-state.js';
import { T0, bodies, claim, enqueue, http500, req, sendAll, sendEach } from './outboxSteps.js';

const MINUTE = 60_000;
const DAY = 86_400_000;
const byBody = (rows: readonly OutboxRow[], body: string) => rows.find((r) => r.body === body)!;

export function describeOperatorReads(open: (pbx?: string) => Promise<OutboxStore>): void {
  describe('pause, probe and resume', () => {
    it('a paused endpoint is kept; its answer makes every waiting webhook due at once, each behind its lane', async () => {
      const s = await open();
      await enqueue(s, T0, [req('A', 'a1'), req('A', 'a2'), req('B', 'b1'), req('X', 'x1', 'other')]);
      await sendAll(s, T0, { kind: 'retry', at: T0 + 10 * MINUTE, step: 3 }, http500);
      await sendAll(s, T0, { kind: 'retry', at: T0 + 10 * MINUTE, step: 3 }, http500, 'other');
      const paused = { failingSince: T0 - MINUTE, pausedAt: T0, nextProbeAt: T0 + MINUTE };
      await s.saveHealth('crm', paused);
      expect([...(await s.health())]).toEqual([['crm', paused]]);

      expect(await s.resumeEndpoint('crm', T0 + MINUTE), 'a1 and b1 waited; a2 waits behind a1').toBe(2);
      expect(await s.resumeEndpoint('crm', T0 + MINUTE), 'already due').toBe(0);
      await s.saveHealth('crm', HEALTHY);
      expect(await s.health()).toEqual(new Map());
      const again = await claim(s, T0 + MINUTE);
      expect(again.map((r) => [r.body, r.step, r.attempts]).sort()).toEqual([['a1', 3, 2], ['b1', 3, 2]]);
      const other = await s.commitPump({ enqueue: [], finished: [], liveState: new Map(), claims: [{ endpoint: 'other', limit: 10 }], holder: 'h', leaseMs: MINUTE }, T0 + MINUTE);
      expect(other.claimed, 'another endpoint keeps its schedule').toEqual([]);
      expect(other.nextDueAt.get('other')).toBe(T0 + 10 * MINUTE);
    });
  });

  describe('limits', () => {
    it('max_age: undelivered webhooks created before the cutoff die with PBXHOOK_OUTBOX_EXPIRED; in flight and delivered stay', async () => {
      const s = await open();
      await enqueue(s, T0, [req('A', 'a1')]);
      await sendAll(s, T0, { kind: 'delivered' });
      await enqueue(s, T0, [req('B', 'b1'), req('C', 'c1')]);
      expect(bodies(await claim(s, T0, 1))).toEqual(['b1']);
      await enqueue(s, T0 + 1_000, [req('C', 'c2'), req('D', 'd1'), req('E', 'e1', 'other')]);

      expect([...(await s.expireOlderThan(T0 + 500, T0 + 2_000))]).toEqual([['crm', 1]]);
      const [dead] = await s.list({ states: ['dead'] }, 10);
      expect(dead).toMatchObject({ body: 'c1', updatedAt: T0 + 2_000, lastError: expect.stringMatching(/^PBXHOOK_OUTBOX_EXPIRED: .*delivery\.max_age/) });
      expect(bodies(await claim(s, T0 + 2_000)).sort(), 'c2 is its lane’s head now').toEqual(['c2', 'd1']);
      expect(Object.fromEntries(await s.stateCounts())).toEqual({ pending: 1, in_flight: 3, failed_waiting: 0, delivered: 1, dead: 1 });
      expect([...(await s.expireOlderThan(T0 + 500, T0 + 3_000))], 'nothing more to expire').toEqual([]);
    });

    it('max_rows: beyond it the oldest undelivered (never one in flight) die with PBXHOOK_OUTBOX_FULL', async () => {
      const s = await open();
      await enqueue(s, T0, [req('A', 'a1'), req('B', 'b1')]);
      await enqueue(s, T0 + 1, [req('C', 'c1')], [req('D', 'd1', 'other')]);
      expect(bodies(await claim(s, T0 + 5, 1))).toEqual(['a1']);
      expect([...(await s.enforceMaxRows(10, T0 + 10))], 'within the limit').toEqual([]);
      expect([...(await s.enforceMaxRows(2, T0 + 10))]).toEqual([['crm', 2]]);
      expect(await s.depth()).toBe(2);
      const dead = await s.list({ states: ['dead'] }, 10);
      expect(bodies(dead)).toEqual(['c1', 'b1']);
      for (const r of dead) expect(r.lastError).toMatch(/^PBXHOOK_OUTBOX_FULL: .*delivery\.max_rows/);
      expect(bodies(await claim(s, T0 + 10, 5, 'other'))).toEqual(['d1']);
    });
  });

  describe('housekeeping', () => {
    it('purge (keep_delivered, keep_dead, pbxhook outbox purge): finished rows changed before `before`, of a selection, with their attempts', async () => {
      const s = await open();
      await enqueue(s, T0, [req('A', 'a1'), req('B', 'b1'), req('C', 'c1', 'other')]);
      const crm = await sendEach(s, T0, (b) => (b === 'a1' ? { kind: 'delivered' } : { kind: 'dead', reason: 'PBXHOOK_HTTP_STATUS: 410' }), http500);
      await sendAll(s, T0, { kind: 'delivered' }, undefined, 'other');
      const a1 = byBody(crm, 'a1');

      expect(await s.purge('delivered', T0), 'changed at T0, not before').toBe(0);
      expect(await s.purge('delivered', T0 + 1, { endpoint: 'crm' })).toBe(1);
      expect(await s.list({ ids: [a1.webhookId] }, 1)).toEqual([]);
      expect(await s.attemptsOf(a1.id), 'its attempts went with it').toEqual([]);
      expect(await s.purge('dead', T0 + 1, { ids: ['999999'] })).toBe(0);
      expect(await s.purge('dead', T0 + 1)).toBe(1);
      expect(await s.purge('delivered', T0 + 1)).toBe(1);
      expect(await s.list({}, 10)).toEqual([]);
    });

    it('a lane outlives its rows: a call that goes on keeps numbering until its lane is idle and forgotten', async () => {
      const s = await open();
      const H = LANE_TOUCH_MS;
      await enqueue(s, T0, [req('A', 'a1'), req('B', 'b1')]);
      await sendAll(s, T0, { kind: 'delivered' });
      expect(await s.purge('delivered', T0 + 1)).toBe(2);
      await enqueue(s, T0 + 2 * H, [req('A', 'a2'), req('C', 'c1')]);
      expect((await s.list({}, 2)).map((r) => [r.body, r.seq])).toEqual([['c1', 1], ['a2', 2]]);
      expect(await s.forgetIdleLanes(T0 + 2 * H), 'B only: A and C still have webhooks').toBe(1);
      await sendAll(s, T0 + 2 * H, { kind: 'delivered' });
      // A lane's activity is written again only when the one written is LANE_TOUCH_MS old: A's at
      // 2.5 H is not (written at 2 H), C's at exactly 3 H is.
      await enqueue(s, T0 + 2.5 * H, [req('A', 'a3')]);
      await sendAll(s, T0 + 2.5 * H, { kind: 'delivered' });
      await enqueue(s, T0 + 3 * H, [req('C', 'c2')]);
      await sendAll(s, T0 + 3 * H, { kind: 'delivered' });
      await s.purge('delivered', T0 + 3 * H + 1);
      expect(await s.forgetIdleLanes(T0 + 2.5 * H), 'A was busy at 2.5 H, C at 3 H').toBe(0);
      // A's last activity (2.5 H) is before 3 H though what is written of it (2 H) is an hour older;
      // C's at 3 H is not.
      expect(await s.forgetIdleLanes(T0 + 3 * H), 'A only').toBe(1);
      expect(await s.forgetIdleLanes(T0 + 4 * H), 'C').toBe(1);
      await enqueue(s, T0 + 4 * H, [req('A', 'a4'), req('C', 'c3')]);
      expect((await s.list({}, 2)).map((r) => [r.body, r.seq])).toEqual([['c3', 1], ['a4', 1]]);
    });

    it('a lane whose call is live is kept however long the call goes on without a webhook', async () => {
      // A call can outlast a day (a stuck channel, a line held open): its hangup must still be numbered after its answer.
      const s = await open();
      const live = (key: string, value: string | undefined) =>
        s.commitPump({ enqueue: [], finished: [], liveState: new Map([[key, value]]), claims: [], holder: 'h', leaseMs: MINUTE }, T0);
      await enqueue(s, T0, [req('A', 'a1'), req('B', 'b1'), req('C', 'c1')]);
      await sendAll(s, T0, { kind: 'delivered' });
      await s.purge('delivered', T0 + 1);
      await live(`${LIVE_CALL_KEY_PREFIX}A`, '{}');
      // B's call is gone; live-state keys of other kinds name no call.
      await live('esl:C', '{}');
      expect(await s.forgetIdleLanes(T0 + 30 * DAY), 'B and C; A is live').toBe(2);
      await enqueue(s, T0 + 30 * DAY, [req('A', 'a2')]);
      expect((await s.list({}, 1)).map((r) => [r.body, r.seq])).toEqual([['a2', 2]]);
      await sendAll(s, T0 + 30 * DAY, { kind: 'delivered' });
      await s.purge('delivered', T0 + 30 * DAY + 1);
      await live(`${LIVE_CALL_KEY_PREFIX}A`, undefined);
      expect(await s.forgetIdleLanes(T0 + 32 * DAY), 'A, once its call ended').toBe(1);
    });
  });

  describe('an operator’s retries', () => {
    it('retry / resend: dead or waiting → pending with a fresh schedule, due now; by row number, webhook-id, endpoint, state', async () => {
      const s = await open();
      await enqueue(s, T0, [req('A', 'a1'), req('B', 'b1'), req('C', 'c1'), req('D', 'd1'), req('E', 'e1', 'other')]);
      const decisions = { a1: { kind: 'dead', reason: 'PBXHOOK_HTTP_STATUS: 410' }, b1: { kind: 'retry', at: T0 + 10 * MINUTE, step: 2 }, c1: { kind: 'delivered' } } as const;
      const rows = await sendEach(s, T0, (b) => decisions[b as keyof typeof decisions] ?? 'keep', http500);
      await sendAll(s, T0, { kind: 'dead', reason: 'PBXHOOK_HTTP_STATUS: 404' }, http500, 'other');
      const [a1, b1, c1, d1] = ['a1', 'b1', 'c1', 'd1'].map((b) => byBody(rows, b));

      expect(await s.retry({ ids: [String(a1!.id)] }, T0 + 10)).toBe(1);
      expect((await s.list({ ids: [String(a1!.id)] }, 1))[0]).toMatchObject({ state: 'pending', step: 0, nextAt: T0 + 10, updatedAt: T0 + 10, lastError: null, attempts: 1 });
      expect(await s.retry({ ids: [b1!.webhookId], states: ['dead'] }, T0 + 10), 'resend takes dead ones only').toBe(0);
      expect(await s.retry({ ids: [b1!.webhookId] }, T0 + 10)).toBe(1);
      expect(await s.retry({ ids: [String(c1!.id), d1!.webhookId] }, T0 + 10), 'delivered and in flight are not retried').toBe(0);
      expect(await s.retry({ states: ['delivered', 'in_flight'] }, T0 + 10)).toBe(0);
      expect(await s.retry({ endpoint: 'crm' }, T0 + 10), 'nothing dead or waiting left').toBe(0);
      expect(await s.retry({ endpoint: 'other', states: ['dead'] }, T0 + 10)).toBe(1);
      expect((await claim(s, T0 + 10)).map((r) => [r.body, r.step, r.attempts]).sort()).toEqual([['a1', 0, 2], ['b1', 0, 2]]);
      expect(bodies(await claim(s, T0 + 10, 5, 'other'))).toEqual(['e1']);
    });

    it('retry a lane now: its head, waiting, is due at once with its step kept; other lanes and PBXes unmoved', async () => {
      const s = await open('pbx-a');
      await enqueue(s, T0, [req('A', 'a1'), req('A', 'a2'), req('B', 'b1')]);
      await sendAll(s, T0, { kind: 'retry', at: T0 + 10 * MINUTE, step: 2 }, http500);
      expect(await s.retryLaneNow({ pbx: 'pbx-b', lane: 'crm:A' }, T0 + 10), 'another PBX’s call A').toBe(0);
      expect(await s.retryLaneNow({ pbx: 'pbx-a', lane: 'crm:A' }, T0 + 10)).toBe(1);
      expect(await s.retryLaneNow({ pbx: 'pbx-a', lane: 'crm:A' }, T0 + 10), 'due already').toBe(0);
      expect(await s.retryLaneNow({ pbx: 'pbx-a', lane: 'crm:nope' }, T0 + 10)).toBe(0);
      expect((await claim(s, T0 + 10)).map((r) => [r.body, r.step, r.attempts])).toEqual([['a1', 2, 2]]);
    });

    it('a dead letter retried goes back to its place: its lane’s later webhooks wait behind it again', async () => {
      const s = await open();
      await enqueue(s, T0, [req('A', 'a1'), req('A', 'a2'), req('A', 'a3')]);
      await sendAll(s, T0, { kind: 'dead', reason: 'PBXHOOK_HTTP_STATUS: 410' }, http500);
      await sendAll(s, T0, { kind: 'delivered' }); // a2
      const [dead] = await s.list({ states: ['dead'] }, 1);
      expect(await s.retry({ ids: [dead!.webhookId] }, T0 + 10)).toBe(1);
      expect(bodies(await claim(s, T0 + 10)), 'a1 is the head again; a3 waits behind it').toEqual(['a1']);
      expect((await s.laneHeads([{ pbx: dead!.pbx, lane: 'crm:A' }]))[0]).toMatchObject({ id: dead!.id, seq: 1, state: 'in_flight' });
    });

    it('Retry-After: the wait the decision asked for is next_at; the attempt remembers what the CRM asked and the start of its answer', async () => {
      const s = await open();
      await enqueue(s, T0, [req('A', 'a1')]);
      const hour = 3_600_000;
      const page = `<html>${'busy '.repeat(500)}</html>`;
      await sendAll(s, T0, { kind: 'retry', at: T0 + hour, step: 1 }, { ...http500, status: 429, error: 'crm: HTTP 429', retryAfterMs: hour, response: page });
      const [row] = await s.list({}, 1);
      expect(row).toMatchObject({ state: 'failed_waiting', nextAt: T0 + hour, lastStatus: 429, step: 1 });
      expect(await s.attemptsOf(row!.id)).toEqual([
        { n: 1, startedAt: T0, latencyMs: 5, status: 429, errorCode: 'PBXHOOK_HTTP_STATUS', error: 'crm: HTTP 429', outcome: 'retry', response: page.slice(0, RESPONSE_KEEP_CHARS), retryAfterMs: hour },
      ]);
      const early = await s.commitPump({ enqueue: [], finished: [], liveState: new Map(), claims: [{ endpoint: 'crm', limit: 1 }], holder: 'h', leaseMs: MINUTE }, T0 + hour - 1);
      expect(early.claimed).toEqual([]);
      expect(early.nextDueAt.get('crm')).toBe(T0 + hour);
    });
  });

  describe('what the console, the metrics and pbxhook outbox read', () => {
    it('list, counts, depth, attempts, endpoint activity, lanes and their heads, what each endpoint owes; every row names its PBX', async () => {
      const s = await open('pbx-a');
      await enqueue(s, T0, [req('A', 'a1'), req('A', 'a2'), req('B', 'b1')]);
      await enqueue(s, T0 + 100, [req('C', 'c1', 'other')]);
      const first = await sendEach(s, T0 + 1_000, (b) => (b === 'a1' ? { kind: 'delivered' } : { kind: 'retry', at: T0 + 10 * MINUTE, step: 1 }), http500);
      const [a2] = await claim(s, T0 + 2_000);
      const [a1, b1] = [byBody(first, 'a1'), byBody(first, 'b1')];

      const all = await s.list({}, 10);
      expect(all.map((r) => [r.body, r.state])).toEqual([['c1', 'pending'], ['b1', 'failed_waiting'], ['a2', 'in_flight'], ['a1', 'delivered']]);
      expect(all.every((r) => r.pbx === 'pbx-a')).toBe(true);
      expect(a2).toMatchObject({ body: 'a2', pbx: 'pbx-a' });
      expect(bodies(await s.list({}, 2))).toEqual(['c1', 'b1']);
      expect(bodies(await s.list({ endpoint: 'crm', states: ['failed_waiting', 'in_flight'] }, 10))).toEqual(['b1', 'a2']);
      expect(bodies(await s.list({ ids: [a1.webhookId, String(all[0]!.id)] }, 10))).toEqual(['c1', 'a1']);
      expect(await s.list({ states: [] }, 10)).toEqual([]);

      expect(await s.counts()).toEqual([
        { endpoint: 'crm', state: 'delivered', count: 1, oldest: T0 },
        { endpoint: 'crm', state: 'failed_waiting', count: 1, oldest: T0 },
        { endpoint: 'crm', state: 'in_flight', count: 1, oldest: T0 },
        { endpoint: 'other', state: 'pending', count: 1, oldest: T0 + 100 },
      ]);
      expect(Object.fromEntries(await s.stateCounts())).toEqual({ pending: 1, in_flight: 1, failed_waiting: 1, delivered: 1, dead: 0 });
      expect(await s.depth()).toBe(3);
      expect(await s.undeliveredByEndpoint()).toEqual(new Map([['crm', { depth: 2, oldestCreatedAt: T0 }], ['other', { depth: 1, oldestCreatedAt: T0 + 100 }]]));
      expect(await s.oldestUndelivered()).toEqual(new Map([['crm', T0], ['other', T0 + 100]]));
      expect(await s.recentDead(5)).toEqual([]);

      expect(await s.attemptsOf(a2!.id), 'in flight: an attempt with no outcome yet').toEqual([
        { n: 1, startedAt: T0 + 2_000, latencyMs: null, status: null, errorCode: null, error: null, outcome: null, response: null, retryAfterMs: null },
      ]);
      expect(await s.attemptsOf(b1.id)).toEqual([
        { n: 1, startedAt: T0 + 1_000, latencyMs: 5, status: 500, errorCode: 'PBXHOOK_HTTP_STATUS', error: 'crm: HTTP 500', outcome: 'retry', response: 'down for maintenance', retryAfterMs: null },
      ]);
      expect(await s.attemptsOf(999_999)).toEqual([]);

      expect(await s.endpointActivity('crm', T0)).toEqual({
        lastDeliveredAt: T0 + 1_000,
        lastError: { at: T0 + 1_000, status: 500, code: 'PBXHOOK_HTTP_STATUS', error: 'crm: HTTP 500', webhook: b1.id },
        attemptsSince: 2,
        dead: 0,
      });
      expect((await s.endpointActivity('crm', T0 + 1_001)).attemptsSince, 'attempts started since then').toBe(0);
      expect(await s.endpointActivity('other', T0)).toEqual({ lastDeliveredAt: null, lastError: null, attemptsSince: 0, dead: 0 });

      const laneA = { pbx: 'pbx-a', lane: 'crm:A' };
      expect((await s.laneRows(laneA)).map((r) => [r.id, r.state])).toEqual([[a1.id, 'delivered'], [a2!.id, 'in_flight']]);
      expect(await s.laneRows({ pbx: 'pbx-b', lane: 'crm:A' }), 'another PBX’s call A').toEqual([]);
      expect(await s.laneHeads([laneA, { pbx: 'pbx-a', lane: 'crm:B' }, { pbx: 'pbx-a', lane: 'crm:none' }, { pbx: 'pbx-b', lane: 'crm:A' }, laneA])).toEqual([
        { id: a2!.id, seq: 2, state: 'in_flight' },
        { id: b1.id, seq: 1, state: 'failed_waiting' },
        undefined,
        undefined,
        { id: a2!.id, seq: 2, state: 'in_flight' },
      ]);
      expect(await s.laneHeads([])).toEqual([]);
    });

    it('sorts names as bytes, whatever the database’s collation: counts by endpoint, the live state by key', async () => {
      const s = await open();
      const names = ['crm-b', 'crm_a', 'CRM', 'crm'];
      await enqueue(s, T0, names.map((e) => req('A', e, e)));
      expect((await s.counts()).map((c) => c.endpoint)).toEqual(['CRM', 'crm', 'crm-b', 'crm_a']);
      await s.commitPump({ enqueue: [], finished: [], liveState: new Map([['call:a', '1'], ['call:B', '2'], ['Call:c', '3']]), claims: [], holder: 'h', leaseMs: MINUTE }, T0);
      expect((await s.liveState()).map(([k]) => k)).toEqual(['Call:c', 'call:B', 'call:a']);
    });

    it('dead letters: the most recent first, counted per endpoint, the last error kept', async () => {
      const s = await open();
      await enqueue(s, T0, [req('A', 'a1'), req('B', 'b1'), req('C', 'c1', 'other')]);
      await sendEach(s, T0 + 10, (b) => ({ kind: 'dead', reason: `PBXHOOK_HTTP_STATUS: gone ${b}` }), http500);
      await sendAll(s, T0 + 20, { kind: 'dead', reason: 'PBXHOOK_HTTP_STATUS: gone c1' }, http500, 'other');
      expect((await s.recentDead(5)).map((r) => [r.body, r.lastError])).toEqual([
        ['c1', 'PBXHOOK_HTTP_STATUS: gone c1'],
        expect.arrayContaining([expect.stringMatching(/^[ab]1$/)]),
        expect.arrayContaining([expect.stringMatching(/^[ab]1$/)]),
      ]);
      expect(await s.recentDead(1)).toHaveLength(1);
      expect((await s.endpointActivity('crm', T0)).dead).toBe(2);
      expect((await s.endpointActivity('other', T0)).dead).toBe(1);
      expect(await s.depth()).toBe(0);
    });
  });
}
