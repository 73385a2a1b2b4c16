/**
 * The connection pool to the PostgreSQL outbox (issue #17): node-postgres, with the outbox's own
 * type parsing and a name the server's pg_stat_activity shows. The URL is a secret (it may carry a
 * password): it is never logged, only the host and database it names (`where`).
 */
import pg from 'pg';
import { databasePlaceOf } from '../config/database-place.js';

/** bigint (int8) columns hold ms timestamps and row ids: far below 2^53, so plain numbers. */
const types = new pg.TypeOverrides();
types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export interface PoolOptions {
  /** Connections at most: a pump uses one, operator reads may use another. */
  readonly max?: number;
  /** Shown in pg_stat_activity, e.g. `pbxhook pbx-berlin`. */
  readonly applicationName?: string;
  /** A connection the server dropped while idle (restart, failover): told, and the pool opens another. */
  readonly onIdleError?: (err: Error) => void;
}

export function openPool(url: string, opts: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 4,
    types,
    application_name: opts.applicationName ?? 'pbxhook',
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // Without a listener an idle client's error (the server restarted) would crash the process.
  pool.on('error', (err) => opts.onIdleError?.(err));
  return pool;
}

/** What logs may say of a URL (src/config/database-place.ts): host, port and database. */
export function where(url: string): string {
  return databasePlaceOf(url) ?? 'the database of outbox.url';
}

/**
 * Runs `fn` in one transaction on one connection; rolls back if it throws. `begin` opens it: plain
 * `BEGIN`, or BEGIN with `SET LOCAL`s in the same round trip (store.ts PUMP_BEGIN).
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query(begin);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    // A connection that cannot even roll back is gone (server restarted, network cut): not reused.
    await client.query('ROLLBACK').catch((e: Error) => (broken = e));
    throw err;
  } finally {
    client.release(broken);
  }
}
