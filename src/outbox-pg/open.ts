/**
 * The PostgreSQL outbox of a config (`outbox.store: postgres`), as `src/deliver/outbox.ts` opens it:
 * loaded only then, so a SQLite outbox never loads node-postgres. Says where it connected (host and
 * database, never the URL: it may hold the password) and logs a connection the server dropped.
 */
import type { Logger } from 'pino';
import type { OutboxStore } from '../deliver/store.js';
import { where } from './pool.js';
import { PgStore } from './store.js';

export async function openPgOutboxStore(url: string, pbx: string, log?: Logger): Promise<OutboxStore> {
  const store = await PgStore.open(url, {
    pbx,
    ...(log !== undefined
      ? { onIdleError: (err: Error) => log.warn({ err: { message: err.message }, code: 'PBXHOOK_OUTBOX_CONNECTION', database: where(url) }, 'outbox database connection lost; a new one is opened when needed') }
      : {}),
  });
  log?.info({ database: where(url), pbx }, 'outbox on PostgreSQL: schema up to date');
  return store;
}
