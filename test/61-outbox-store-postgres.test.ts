/**
 * The shared outbox behaviour suite (test/support/outboxStoreSuite.ts) against the PostgreSQL
 * backend (issue #17 items 1, 5): one throwaway cluster for the file (test/support/postgres.ts), a
 * fresh database per test, collated as en_US as production databases often are (SQLite compares
 * bytes); "reopen" connects to the same database again as a restarted daemon does after kill -9
 * (the old pool left open until the end, like a dead process's connections).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutboxStore } from '../src/deliver/store.js';
import { PgStore } from '../src/outbox-pg/store.js';
import { type StoreHarness, describeOutboxStore } from './support/outboxStoreSuite.js';
import { T0, delivered, enqueue, http500, req, sendAll } from './support/outboxSteps.js';
import { postgresRequirement, startPostgres, type TestPostgres } from './support/postgres.js';

let server: TestPostgres | undefined;
let databases = 0;

function postgresHarness(): StoreHarness {
  const opened: OutboxStore[] = [];
  let url = '';
  let pbxName = '';
  const openOne = async (pbx: string) => {
    // Every pump looks for expired leases: the suite's clock jumps, it does not wait a second. The
    // suite checks exact counts after each step: the delivered count is read every time here
    // (its one-minute reuse is tested below).
    const s = await PgStore.open(url, { pbx, reclaimEveryMs: 0, deliveredCountEveryMs: 0 });
    opened.push(s);
    return s;
  };
  return {
    open(pbx = 'pbx') {
      // Sorting as a database made under en_US.UTF-8 (Debian's usual) does: 'crm' < 'CRM' < 'crm_a' < 'crm-b'.
      url = server!.createDatabase(`suite_${++databases}`, { icuLocale: 'en-US' });
      return openOne((pbxName = pbx));
    },
    reopen: () => openOne(pbxName),
    async dispose() {
      for (const s of opened) await s.close();
    },
  };
}

describe(`PostgreSQL${postgresRequirement.note}`, { skip: postgresRequirement.skip }, () => {
  beforeAll(async () => {
    postgresRequirement.check();
    server = await startPostgres();
  });
  afterAll(() => server?.stop());
  describeOutboxStore('PostgreSQL', postgresHarness);

  // Every daemon of a fleet reads the counts at each scrape; counting the delivered reads the whole
  // table, so that one count is reused for a minute (PgStore.stateCounts). The rest stay exact.
  it('counts pending, in flight, waiting and dead at every read, the delivered at most once a minute', async () => {
    const url = server!.createDatabase(`counts_${++databases}`);
    const s = await PgStore.open(url, { pbx: 'pbx' });
    const fresh = await PgStore.open(url, { pbx: 'pbx', deliveredCountEveryMs: 0 });
    try {
      await enqueue(s, T0, [req('A', 'a1')], [req('B', 'b1')]);
      await sendAll(s, T0, { kind: 'delivered' }, delivered);
      expect(Object.fromEntries(await s.stateCounts())).toEqual({ pending: 0, in_flight: 0, failed_waiting: 0, delivered: 2, dead: 0 });
      await enqueue(s, T0 + 1, [req('C', 'c1')], [req('D', 'd1')], [req('E', 'e1')]);
      await sendAll(s, T0 + 1, { kind: 'delivered' }, delivered, 'crm');
      await enqueue(s, T0 + 2, [req('F', 'f1')], [req('G', 'g1')]);
      await sendAll(s, T0 + 2, { kind: 'dead', reason: 'HTTP 410' }, { ...http500, status: 410 });
      await enqueue(s, T0 + 3, [req('H', 'h1')]);
      expect(Object.fromEntries(await s.stateCounts()), 'the delivered as counted a moment ago; the rest now').toEqual({
        pending: 1, in_flight: 0, failed_waiting: 0, delivered: 2, dead: 2,
      });
      expect(Object.fromEntries(await fresh.stateCounts())).toEqual({ pending: 1, in_flight: 0, failed_waiting: 0, delivered: 5, dead: 2 });
    } finally {
      await s.close();
      await fresh.close();
    }
  });
});
