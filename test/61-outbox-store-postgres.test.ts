/**
 * The shared outbox behaviour suite (test/support/outboxStoreSuite.ts) against the PostgreSQL
 * backend (issue #17 items 1, 5): one throwaway cluster for the file (test/support/postgres.ts), a
 * fresh database per test, collated as en_US as production databases often are (SQLite compares
 * bytes); "reopen" connects to the same database again as a restarted daemon does after kill -9
 * (the old pool left open until the end, like a dead process's connections).
 */
import { afterAll, beforeAll, describe } from 'vitest';
import type { OutboxStore } from '../src/deliver/store.js';
import { PgStore } from '../src/outbox-pg/store.js';
import { type StoreHarness, describeOutboxStore } from './support/outboxStoreSuite.js';
import { postgresRequirement, startPostgres, type TestPostgres } from './support/postgres.js';

let server: TestPostgres | undefined;
let databases = 0;

function postgresHarness(): StoreHarness {
  const opened: OutboxStore[] = [];
  let url = '';
  let pbxName = '';
  const openOne = async (pbx: string) => {
    // Every pump looks for expired leases: the suite's clock jumps, it does not wait a second.
    const s = await PgStore.open(url, { pbx, reclaimEveryMs: 0 });
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
});
