/**
 * The shared outbox behaviour suite (test/support/outboxStoreSuite.ts) against the SQLite backend:
 * a temp state file per test; "reopen" opens the same file with a new connection, as a restarted
 * daemon does after kill -9 (the old connection is left unclosed until the end, like a dead process's).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteOutbox } from '../src/deliver/outbox-store.js';
import { SqliteStore } from '../src/deliver/sqlite-store.js';
import type { OutboxStore } from '../src/deliver/store.js';
import { type StoreHarness, describeOutboxStore } from './support/outboxStoreSuite.js';

function sqliteHarness(): StoreHarness {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-store-'));
  const file = path.join(dir, 'outbox.sqlite');
  const opened: OutboxStore[] = [];
  let pbxName = '';
  const openOne = (pbx: string) => {
    const s = new SqliteStore(new SqliteOutbox(file, { pbx }));
    opened.push(s);
    return Promise.resolve<OutboxStore>(s);
  };
  return {
    open: (pbx = 'pbx') => openOne((pbxName = pbx)),
    reopen: () => openOne(pbxName),
    async dispose() {
      for (const s of opened) await s.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describeOutboxStore('SQLite', sqliteHarness);
