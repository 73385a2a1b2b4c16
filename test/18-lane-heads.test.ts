/**
 * Which lanes the outbox may try next (src/deliver/lane-heads.ts), and the store keeping that
 * in-memory index true to the database: at start-up, after a schema-1 outbox is migrated, when
 * another process (`pbxhook outbox retry`) writes, and after a rolled-back transaction.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { LaneHeads } from '../src/deliver/lane-heads.js';
import { MIGRATIONS } from '../src/deliver/outbox-schema.js';
import { SqliteOutbox } from '../src/deliver/outbox-store.js';
import { STATES } from '../src/deliver/outbox-state.js';
import type { WebhookRequest } from '../src/emit/request.js';
import { plansOf, preparedDuring } from './support/sqlitePlans.js';

const T0 = Date.parse('2026-01-01T10:00:00Z');
const FRESH = 5_000;
const delivered = { latencyMs: 5, status: 200, errorCode: undefined, error: undefined };

const dirs: string[] = [];
const stores: SqliteOutbox[] = [];
afterAll(() => {
  for (const s of stores) s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempFile(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-lanes-'));
  dirs.push(dir);
  return path.join(dir, 'outbox.sqlite');
}
function open(file: string): SqliteOutbox {
  const s = new SqliteOutbox(file);
  stores.push(s);
  return s;
}
function req(call: string, body: string): WebhookRequest {
  return { endpoint: 'crm', method: 'POST', url: 'https://crm.example.com/hook', headers: {}, body, orderKey: `crm:${call}` };
}
const lanesOf = (heads: LaneHeads, now: number, limit = 100) => heads.due('crm', now, limit).map((h) => h.lane);

describe('LaneHeads', () => {
  it('serves lanes due in the last few seconds first, then the rest, each oldest first, ties in arrival order', () => {
    const heads = new LaneHeads(FRESH);
    const now = T0 + 3_600_000;
    heads.append('old-b', 'crm', 1, T0 + 10, now);
    heads.append('old-a', 'crm', 2, T0, now);
    heads.append('live-2', 'crm', 3, now - 1_000, now);
    heads.append('live-1', 'crm', 4, now - 2_000, now);
    heads.append('tie', 'crm', 5, now - 1_000, now);
    heads.append('later', 'crm', 6, now + 1, now);
    expect(lanesOf(heads, now)).toEqual(['live-1', 'live-2', 'tie', 'old-a', 'old-b']);
  });

  it('takes a head once, keeps it out while in flight, and queues the lane behind it', () => {
    const heads = new LaneHeads(FRESH);
    heads.append('A', 'crm', 1, T0, T0);
    heads.append('A', 'crm', 2, T0, T0);
    heads.append('B', 'other', 3, T0, T0);
    expect(heads.due('crm', T0, 10).map((h) => h.id)).toEqual([1]);
    heads.claimed('A');
    expect(lanesOf(heads, T0 + 1)).toEqual([]);
    expect(heads.nextDueAt('crm')).toBeUndefined();
    expect(heads.advance('A', T0 + 2)).toBe(true);
    expect(heads.due('crm', T0 + 2, 10).map((h) => h.id)).toEqual([2]);
    heads.claimed('A');
    expect(heads.advance('A', T0 + 3)).toBe(true);
    expect(heads.get('A'), 'nothing owed: forgotten').toBeUndefined();
    expect(heads.due('other', T0, 10).map((h) => h.id)).toEqual([3]);
  });

  it('serves a lane thousands long (3CX messages share one) in order, to the end', () => {
    const heads = new LaneHeads(FRESH);
    for (let id = 1; id <= 5_000; id++) heads.append('crm:message', 'crm', id, T0 + id, T0 + id);
    const served: number[] = [];
    for (let now = T0; served.length < 5_000; now++) {
      const [head] = heads.due('crm', now + 10_000, 1);
      served.push(head!.id);
      heads.claimed(head!.lane);
      expect(heads.advance(head!.lane, now)).toBe(true);
    }
    expect(served).toEqual(Array.from({ length: 5_000 }, (_, i) => i + 1));
    expect(heads.get('crm:message')).toBeUndefined();
  });

  it('a retried head waits for its time; one read from the database has no known queue', () => {
    const heads = new LaneHeads(FRESH);
    heads.append('A', 'crm', 1, T0, T0);
    heads.due('crm', T0, 1);
    heads.claimed('A');
    expect(heads.retryAt('A', T0 + 30_000, T0)).toBe(true);
    expect(lanesOf(heads, T0 + 29_999)).toEqual([]);
    expect(heads.nextDueAt('crm')).toBe(T0 + 30_000);
    expect(lanesOf(heads, T0 + 30_000)).toEqual(['A']);
    heads.fromRow('B', 'crm', 7, T0, false, T0);
    expect(heads.advance('B', T0), 'the store must ask the database').toBe(false);
    expect(heads.retryAt('nope', T0, T0)).toBe(false);
  });

  it('stays correct and bounded while heads change many times', () => {
    const heads = new LaneHeads(FRESH);
    for (let i = 0; i < 20_000; i++) heads.fromRow(`L${i % 10}`, 'crm', i, T0 + i, false, T0 + i);
    const queued = (heads as unknown as { queues: Map<string, { all: { length: number } }> }).queues.get('crm')!.all.length;
    expect(queued).toBeLessThan(2_000);
    expect(heads.nextDueAt('crm')).toBe(T0 + 19_990);
    expect(heads.due('crm', T0 + 20_000, 3).map((h) => h.id)).toEqual([19_990, 19_991, 19_992]);
  });
});

describe('the store keeps the lane index true to the database', () => {
  it('migrates a schema-1 outbox: heads come from the rows; an open attempt is closed as interrupted', () => {
    const file = tempFile();
    const v1 = new Database(file);
    v1.exec(MIGRATIONS[0]!);
    v1.pragma('user_version = 1');
    const insert = v1.prepare(
      `INSERT INTO webhooks (webhook_id, endpoint, lane, seq, call_id, summary, method, url, headers, body, state, attempts, next_at, created_at, updated_at)
       VALUES (?, 'crm', ?, ?, ?, 'x', 'POST', 'https://crm.example.com/hook', '{}', ?, ?, ?, ?, ?, ?)`,
    );
    insert.run('msg_1', 'crm:A', 1, 'A', 'a1', 'delivered', 1, T0, T0, T0);
    insert.run('msg_2', 'crm:A', 2, 'A', 'a2', 'in_flight', 1, T0, T0, T0 + 5);
    insert.run('msg_3', 'crm:A', 3, 'A', 'a3', 'pending', 0, T0, T0, T0);
    insert.run('msg_4', 'crm:B', 1, 'B', 'b1', 'failed_waiting', 1, T0 + 60_000, T0, T0);
    v1.prepare(`INSERT INTO attempts (webhook, n, started_at) VALUES (2, 1, ?)`).run(T0 + 5);
    v1.prepare(`INSERT INTO lanes (lane, endpoint, last_seq, head_at, updated_at) VALUES ('crm:A', 'crm', 3, NULL, ?), ('crm:B', 'crm', 1, ?, ?)`).run(T0, T0 + 60_000, T0);
    v1.close();

    const s = open(file);
    expect(new Database(file, { readonly: true }).pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(Object.fromEntries(s.stateCounts()), 'counted from the rows at migration').toEqual({ pending: 1, in_flight: 1, failed_waiting: 1, delivered: 1, dead: 0 });
    expect(s.claim('crm', 10, T0 + 1).map((r) => r.body), 'a2 is in flight, b1 waits').toEqual([]);
    expect(s.recover(T0 + 10)).toBe(1);
    expect(s.attemptsOf(2).map((a) => [a.n, a.startedAt, a.outcome])).toEqual([[1, T0 + 5, 'interrupted']]);
    const [a2] = s.claim('crm', 10, T0 + 10);
    expect(a2).toMatchObject({ body: 'a2', attempts: 2 });
    s.finish(a2!, delivered, { kind: 'delivered' }, T0 + 20);
    expect(s.claim('crm', 10, T0 + 20).map((r) => r.body), 'the next head, read from the rows').toEqual(['a3']);
    expect(s.nextDueAt('crm')).toBe(T0 + 60_000);
    expect(s.insert([req('A', 'a4')], T0 + 30)[0]!.seq, 'numbering goes on from the old counter').toBe(4);
  });

  it('sees what another process wrote (pbxhook outbox retry while the daemon runs)', () => {
    const file = tempFile();
    const daemon = open(file);
    daemon.insert([req('A', 'a1')], T0);
    const [a1] = daemon.claim('crm', 1, T0);
    daemon.finish(a1!, { ...delivered, status: 410 }, { kind: 'dead', reason: 'gone' }, T0);
    expect(daemon.claim('crm', 10, T0 + 1)).toEqual([]);
    const cli = open(file);
    expect(cli.retry({ ids: [String(a1!.id)] }, T0 + 2)).toBe(1);
    expect(daemon.nextDueAt('crm')).toBe(T0 + 2);
    expect(daemon.claim('crm', 10, T0 + 2).map((r) => r.body)).toEqual(['a1']);
  });

  it('keeps its counts (undelivered, and per state) true through every transition, a purge and another writer', () => {
    const file = tempFile();
    const s = open(file);
    const cli = open(file);
    const reader = new Database(file, { readonly: true });
    const counted = () => (reader.prepare(`SELECT count(*) AS n FROM webhooks WHERE state NOT IN ('delivered', 'dead')`).get() as { n: number }).n;
    const perState = () => {
      const byState = Object.fromEntries(STATES.map((st) => [st, 0]));
      for (const r of reader.prepare(`SELECT state, count(*) AS n FROM webhooks GROUP BY state`).all() as Array<{ state: string; n: number }>) byState[r.state] = r.n;
      return byState;
    };
    let now = T0;
    const check = (what: string) => {
      expect(s.depth(), what).toBe(counted());
      expect(Object.fromEntries(s.stateCounts()), what).toEqual(perState());
    };
    check('empty');
    for (let round = 0; round < 30; round++) {
      now += 1_000;
      s.insert([req(`c${round}`, 'x'), req(`c${round}`, 'y'), req(`c${round % 4}`, 'z')], now);
      check('after insert');
      const claimed = s.claim('crm', 4, now);
      claimed.forEach((row, i) => {
        const decision = [{ kind: 'delivered' as const }, { kind: 'dead' as const, reason: 'gone' }, { kind: 'retry' as const, at: now + 500, step: 1 }, { kind: 'requeue' as const }][(i + round) % 4]!;
        s.finish(row, delivered, decision, now);
      });
      check('after finish');
      if (round % 7 === 3) cli.retry({ states: ['dead'] }, now);
      if (round % 9 === 5) {
        s.expireOlderThan(now - 5_000, now);
        const missed = reader.prepare(`SELECT count(*) FROM webhooks WHERE state NOT IN ('delivered', 'dead') AND created_at < ?`).pluck().get(now - 5_000);
        expect(missed, 'max_age left nothing older undelivered, a retried old row included').toBe(0);
      }
      check('after retry/expire');
      if (round % 5 === 4) cli.purge(round % 10 === 4 ? 'delivered' : 'dead', now - 3_000);
      check('after purge');
    }
    reader.close();
  });

  it('forgets what a failed transition changed in memory: a rollback leaves the index as the rows are', () => {
    const s = open(tempFile());
    s.insert([req('A', 'a1'), req('A', 'a2')], T0);
    const [a1] = s.claim('crm', 1, T0);
    s.finish(a1!, delivered, { kind: 'delivered' }, T0);
    expect(() => s.finish(a1!, delivered, { kind: 'delivered' }, T0)).toThrow(/cannot deliver from delivered/);
    expect(() =>
      s.inTransaction(() => {
        s.claim('crm', 1, T0); // a2 in flight, in memory and in the transaction…
        throw new Error('…which then rolls back');
      }),
    ).toThrow('rolls back');
    expect(s.claim('crm', 10, T0).map((r) => r.body), 'a2 is claimable again').toEqual(['a2']);
  });
});

describe('housekeeping and the status page read indexes, not the table', () => {
  it('purge, max_age, max_rows and the dead letters never scan the webhooks table', () => {
    const file = tempFile();
    const s = open(file);
    for (let i = 0; i < 20; i++) s.insert([req(`c${i}`, 'x'), req(`c${i}`, 'y')], T0 + i);
    s.claim('crm', 10, T0 + 100).forEach((row, i) =>
      s.finish(row, delivered, i % 2 ? { kind: 'delivered' } : { kind: 'dead', reason: 'gone' }, T0 + 100),
    );
    // Every statement these prepare is captured and explained; a full SCAN of webhooks is what
    // made housekeeping cost ~350 ms a minute at 500k rows.
    const prepared = preparedDuring(() => {
      s.expireOlderThan(T0 + 5, T0 + 200);
      s.enforceMaxRows(1, T0 + 200);
      s.purge('delivered', T0 + 150);
      s.purge('dead', T0 + 150);
      expect(s.recentDead(50).length).toBeGreaterThan(0);
    });
    const touching = prepared.filter((t) => /\bwebhooks\b/.test(t) && !/^\s*PRAGMA/i.test(t));
    expect(touching.length, 'the statements were captured').toBeGreaterThanOrEqual(5);
    for (const { text, details } of plansOf(file, touching)) expect(details, text).not.toContain('SCAN webhooks');
  });

  it('forgetting idle lanes reads the lanes idle long enough, not every lane', () => {
    // One lane per call, kept a day: the whole table read every minute was 54 ms at 1M lanes.
    const file = tempFile();
    const s = open(file);
    s.insert([req('old', 'x')], T0);
    s.insert([req('new', 'y')], T0 + 10);
    const prepared = preparedDuring(() => expect(s.forgetIdleLanes(T0 + 5), 'both lanes still hold a webhook').toBe(0));
    const [{ text, details }] = plansOf(file, prepared.filter((t) => /DELETE FROM lanes/.test(t))) as [{ text: string; details: string[] }];
    expect(details.join('\n'), text).toMatch(/SEARCH lanes USING INDEX lanes_idle \(updated_at<\?\)/);
    expect(details.join('\n')).not.toMatch(/SCAN lanes/);
  });
});
