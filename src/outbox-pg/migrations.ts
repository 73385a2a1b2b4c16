/**
 * The PostgreSQL outbox's schema, as versioned migrations applied at start (issue #17 item 1).
 * Several processes may start at once (a fleet of `pbxhook run`, delivery workers): each takes the
 * same transaction-scoped advisory lock first, so one migrates while the others wait, then find the
 * version table up to date and apply nothing. A database from a newer pbxhook is refused.
 *
 * The tables follow the SQLite outbox (src/deliver/outbox-schema.ts) with what sharing needs:
 * every row carries the PBX it came from (`pbx`, config `pbx.name`), lanes are per PBX (two PBXes
 * may both have a call "1700000000.12"), a claim carries its holder and until when it holds
 * (`claimed_by`, `claim_until`: a dead process's claims come back), and the live calls are per PBX.
 */
import type pg from 'pg';

/** Any fixed 64-bit number unique to pbxhook: "pbxhook\0" as ASCII. */
export const MIGRATION_LOCK = '8098167469907077888';

export const VERSION_TABLE = 'outbox_schema_version';

/** Schema versions in order; version N is MIGRATIONS[N - 1]. Never edit one that shipped: add another. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE webhooks (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     webhook_id text NOT NULL UNIQUE,
     pbx text NOT NULL,
     endpoint text NOT NULL,
     lane text NOT NULL,
     seq bigint NOT NULL,
     call_id text NOT NULL,
     summary text NOT NULL,
     method text NOT NULL,
     url text NOT NULL,
     headers jsonb NOT NULL,
     body text NOT NULL,
     state text NOT NULL CHECK (state IN ('pending', 'in_flight', 'failed_waiting', 'delivered', 'dead')),
     step integer NOT NULL DEFAULT 0,
     attempts integer NOT NULL DEFAULT 0,
     next_at bigint NOT NULL,
     created_at bigint NOT NULL,
     updated_at bigint NOT NULL,
     last_status integer,
     last_error text,
     claimed_by text,
     claim_until bigint,
     UNIQUE (pbx, lane, seq)
   );
   -- A lane's undelivered rows in order: is this row its lane's head?
   CREATE INDEX webhooks_lane_undelivered ON webhooks (pbx, lane, seq) WHERE state IN ('pending', 'in_flight', 'failed_waiting');
   -- What is due per endpoint, oldest first, in the claim's very order (no sort under a LIMIT).
   CREATE INDEX webhooks_due ON webhooks (endpoint, next_at, id) WHERE state IN ('pending', 'failed_waiting');
   -- Claims to take back when their holder died.
   CREATE INDEX webhooks_claims ON webhooks (claim_until) WHERE state = 'in_flight';
   -- Purge and the dead letters: finished rows by age.
   CREATE INDEX webhooks_finished ON webhooks (state, updated_at) WHERE state IN ('delivered', 'dead');
   CREATE TABLE attempts (
     webhook bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
     n integer NOT NULL,
     started_at bigint NOT NULL,
     latency_ms integer,
     status integer,
     error_code text,
     error text,
     outcome text,
     response text,
     retry_after_ms bigint,
     PRIMARY KEY (webhook, n)
   );
   CREATE TABLE lanes (
     pbx text NOT NULL,
     lane text NOT NULL,
     endpoint text NOT NULL,
     last_seq bigint NOT NULL,
     updated_at bigint NOT NULL,
     PRIMARY KEY (pbx, lane)
   );
   CREATE TABLE endpoint_health (
     endpoint text PRIMARY KEY,
     failing_since bigint,
     paused_at bigint,
     next_probe_at bigint
   );
   CREATE TABLE live_state (
     pbx text NOT NULL,
     key text NOT NULL,
     value text NOT NULL,
     PRIMARY KEY (pbx, key)
   );`,
  // Every process's minute of housekeeping forgets lanes idle for a day: without an index each one
  // read every lane, one per call for a day (SQLite's schema 6 says more).
  `CREATE INDEX lanes_idle ON lanes (updated_at);`,
];

export class SchemaTooNewError extends Error {
  override readonly name = 'SchemaTooNewError';
  readonly code = 'PBXHOOK_OUTBOX_SCHEMA';
  constructor(found: number, known: number) {
    super(`outbox schema version ${found} is newer than this pbxhook knows (${known}): upgrade pbxhook`);
  }
}

/**
 * Brings the schema up to date in one transaction; returns the versions applied (none when another
 * process already did). Safe to call from any number of processes at once.
 */
export async function migrate(client: pg.ClientBase, migrations: readonly string[] = MIGRATIONS): Promise<number[]> {
  await client.query('BEGIN');
  try {
    // Held until COMMIT: the second process reads the version only after the first committed.
    await client.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${VERSION_TABLE} (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${VERSION_TABLE}`);
    const current = rows[0]?.v ?? 0;
    if (current > migrations.length) throw new SchemaTooNewError(current, migrations.length);
    const applied: number[] = [];
    for (let v = current + 1; v <= migrations.length; v++) {
      await client.query(migrations[v - 1]!);
      await client.query(`INSERT INTO ${VERSION_TABLE} (version) VALUES ($1)`, [v]);
      applied.push(v);
    }
    await client.query('COMMIT');
    return applied;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
