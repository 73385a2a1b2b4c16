import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore } from '../src/deliver/outbox.js';

const DAY = 86_400_000;

/**
 * What the daemon does to a large outbox besides delivering, all on its event loop: the minute's
 * housekeeping (max_age, max_rows, purge of delivered and dead past their keep, idle lanes), a
 * /metrics scrape's state counts, a status-page refresh, and rebuilding the lane index after
 * another process wrote (`pbxhook outbox retry`). The outbox holds `rows` webhooks written over six
 * days (with keep_delivered: 7d, longer than the default 1d), 6 per call (one lane each), 1 in 500 dead, the
 * last 200 undelivered.
 */
export function upkeep(rows: number): Record<string, number> {
  const dir = mkdtempSync(join(tmpdir(), 'pbxhook-bench-upkeep-'));
  try {
    openStore(dir).close(); // the schema, as the daemon makes it
    const now = Date.now();
    const db = new Database(join(dir, 'outbox.sqlite'));
    const insert = db.prepare(
      `INSERT INTO webhooks (webhook_id, endpoint, lane, seq, call_id, summary, method, url, headers, body, state, next_at, created_at, updated_at)
       VALUES (?, 'crm', ?, ?, ?, 'call.ended', 'POST', 'https://crm.example.com/hook', '{"content-type":"application/json"}', ?, ?, ?, ?, ?)`,
    );
    const lane = db.prepare(`INSERT INTO lanes (lane, endpoint, last_seq, updated_at) VALUES (?, 'crm', 6, ?)`);
    const body = JSON.stringify({ event: 'call.ended', padding: 'x'.repeat(400) });
    db.transaction(() => {
      for (let i = 0; i < rows; i++) {
        const at = now - 6 * DAY + Math.floor((i * 6 * DAY) / rows);
        const state = i >= rows - 200 ? 'pending' : i % 500 === 0 ? 'dead' : 'delivered';
        insert.run(`msg_${i}`, `crm:c${Math.floor(i / 6)}`, (i % 6) + 1, `c${Math.floor(i / 6)}`, body, state, at, at, at);
        if (i % 6 === 5) lane.run(`crm:c${Math.floor(i / 6)}`, at); // a call of 6 webhooks, one lane
      }
    })();
    db.close();

    const store = openStore(dir);
    const other = openStore(dir);
    store.depth();
    store.nextDueAt('crm'); // the lane index, as a running daemon has it
    let written = 0;
    const time = (fn: () => unknown): number => {
      const samples: number[] = [];
      for (let k = 0; k < 5; k++) {
        const t0 = performance.now();
        fn();
        samples.push(performance.now() - t0);
      }
      return samples.sort((a, b) => a - b)[2]!;
    };
    const result = {
      rows,
      // The same calls, in the same order, as OutboxWorker.housekeeping: max_age 3d, max_rows 100k (defaults), keep_delivered 7d, keep_dead 30d (default).
      housekeeping: time(() => {
        store.expireOlderThan(now - 3 * DAY, now);
        store.enforceMaxRows(100_000, now);
        store.purge('delivered', now - 7 * DAY);
        store.purge('dead', now - 30 * DAY);
        store.forgetIdleLanes(now - 7 * DAY);
        store.depth();
      }),
      scrape: time(() => store.stateCounts()),
      statusPage: time(() => [store.list({}, 50), store.recentDead(50), store.stateCounts()]),
      afterOtherWriter: time(() => {
        other.saveHealth('other', { failingSince: (written += 1), pausedAt: null, nextProbeAt: null }); // any commit by another process
        store.nextDueAt('crm');
        store.depth();
      }),
    };
    store.close();
    other.close();
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
