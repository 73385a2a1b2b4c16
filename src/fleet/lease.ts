/**
 * The standby lease (issue #17 item 3): of the `pbxhook run` daemons for one PBX, the one holding a
 * PostgreSQL session-level advisory lock keyed by the PBX's name follows it; the others wait here.
 *
 * The lock lives on a connection of its own and dies with it: a kill -9 or a host that goes down
 * frees it as soon as the server sees the socket close; a network cut, once the server's idle
 * session timeout or TCP keepalive ends the session (lease-timing.ts). The holder checks its
 * connection all along and hears of the loss first: the daemon then stops following the PBX at once
 * (`lost`), and never trusts a lease it has not confirmed lately (`fresh`), so two daemons never
 * write one PBX's webhooks at once. README "Standby" says why a lock rather than a lease row.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { type LeaseTiming, leaseSessionOptions, leaseTiming } from './lease-timing.js';

/** "pbxh": the seed of the lease key's hash, and the first key of the two-key lock older pbxhook took. */
export const LEASE_LOCK_CLASS = 0x70627868;

/**
 * The lease is one 64-bit advisory lock, `hashtextextended(pbx.name, "pbxh")`: two names share it by
 * chance once in about 2^64 / n² (n names), where the 32-bit `hashtext` of the two-key lock
 * `(LEASE_LOCK_CLASS, hashtext(name))` that pbxhook took before made a collision, and with it a PBX
 * that nobody follows, thinkable in a large fleet. PostgreSQL keeps one-key and two-key advisory
 * locks apart, so the old and the new key never meet.
 */
const TAKE_LEASE = 'SELECT pg_try_advisory_lock(hashtextextended($2, $1)) AS held';
/**
 * The earlier daemons' lock, taken as well while it is free, so that one of them standing by during
 * an upgrade keeps waiting; held by one of them for this PBX, the new daemon waits instead. The
 * holder is recognised by its session's name (application_name, `pbxhook lease <name>`, the same in
 * both versions), so a colliding old key held for another PBX does not stop this one.
 */
const TAKE_OLD_LEASE = 'SELECT pg_try_advisory_lock($1, hashtext($2)) AS held';
const OLD_LEASE_HOLDER = `SELECT a.application_name = $3 AS ours FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid = $1::oid AND l.objid = hashtext($2)::oid
    AND l.pid <> pg_backend_pid()`;
/**
 * Who holds the lease, for the standby to say (issue #17): the holder's client address as the
 * server sees it. A one-key advisory lock shows in pg_locks as its high half (classid) and low half
 * (objid), objsubid 1. pg_stat_activity shows another role's address as null: then none is said. A
 * local socket has no address but client_port -1. Daemons of one PBX share the session name, so
 * only the address tells them apart.
 */
const LEASE_HOLDER = `WITH k AS (SELECT hashtextextended($2, $1) AS key)
  SELECT CASE WHEN a.client_port = -1 THEN 'a local socket' ELSE host(a.client_addr) END AS holder
  FROM k, pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.pid <> pg_backend_pid()
    AND l.classid = ((k.key >> 32) & 4294967295)::oid AND l.objid = (k.key & 4294967295)::oid`;
const GIVE_LEASE_BACK = 'SELECT pg_advisory_unlock(hashtextextended($2, $1))';

/** What a standby waits for, in its log line, /healthz and the console alike. */
export function waitingFor(holder: string | undefined): string {
  return `waiting for this PBX's lease${holder === undefined ? '' : `, held by ${holder}`}`;
}

export type LeaseRole = 'standby' | 'active' | 'lost';

export interface LeaseOptions {
  /** postgres:// URL (outbox.url); never logged. */
  readonly url: string;
  /** pbx.name: one lease per PBX. */
  readonly pbxName: string;
  readonly takeoverSeconds: number;
  readonly log: Logger;
  /** Monotonic ms (performance.now in production). */
  readonly now?: () => number;
}

export interface LeaseLoss {
  readonly reason: string;
}

export interface StandbyLease {
  readonly timing: LeaseTiming;
  role(): LeaseRole;
  /** While standing by: the holder's address as last asked (LEASE_HOLDER), `another session` when unseen. */
  holder(): string | undefined;
  /** Resolves once the lock is held; never rejects (an unreachable database is retried). */
  readonly acquired: Promise<void>;
  /** Resolves once a held lease is lost: the caller must stop following the PBX. */
  readonly lost: Promise<LeaseLoss>;
  /** True while the lease was confirmed recently enough to act on (see LeaseTiming.freshMs). */
  fresh(): boolean;
  /** Gives the lock up (closing its connection) and stops asking. */
  close(): Promise<void>;
}

/**
 * The query's answer, or a rejection once `ms` passed without it. The timer's end waits one more
 * turn of the event loop (setImmediate runs after the sockets are read), so an answer that arrived
 * while this process was busy counts: only a silent server loses the lease, never a busy host.
 */
function within<T>(query: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => setImmediate(() => reject(new Error(`no answer within ${ms} ms`))), ms);
  });
  return Promise.race([query, late]).finally(() => clearTimeout(timer));
}

/** Waits for, then holds, the lease of `pbxName`. */
export function holdStandbyLease(opts: LeaseOptions): StandbyLease {
  const timing = leaseTiming(opts.takeoverSeconds);
  const now = opts.now ?? (() => performance.now());
  const log = opts.log.child({ pbxName: opts.pbxName });
  let role: LeaseRole = 'standby';
  let closed = false;
  let client: pg.Client | undefined;
  let timer: NodeJS.Timeout | undefined;
  let confirmedAt = -Infinity;
  let unreachable = false;
  let holder: string | undefined;
  let onAcquired!: () => void;
  let onLost!: (l: LeaseLoss) => void;
  const acquired = new Promise<void>((r) => (onAcquired = r));
  const lost = new Promise<LeaseLoss>((r) => (onLost = r));

  const later = (step: () => Promise<void>, ms: number): void => {
    if (closed) return;
    timer = setTimeout(() => void step(), ms);
  };
  const drop = (c: pg.Client | undefined): void => {
    if (c === undefined) return;
    // end() waits for the server's goodbye, which a cut network never sends: the socket goes now.
    (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    c.end().catch(() => undefined);
  };
  const loseLease = (reason: string): void => {
    if (role !== 'active') return;
    role = 'lost';
    confirmedAt = -Infinity;
    if (timer) clearTimeout(timer);
    drop(client);
    client = undefined;
    log.error({ code: 'PBXHOOK_LEASE_LOST', reason }, 'standby lease lost: no longer following this PBX');
    onLost({ reason });
  };

  // As older pbxhook named it too (OLD_LEASE_HOLDER): PostgreSQL keeps 63 bytes of it.
  const sessionName = `pbxhook lease ${opts.pbxName}`.slice(0, 63);
  let oldHolderSaid = false;
  /** Takes the lease; false while it, or the earlier daemons' lock for this PBX, is someone else's. */
  const take = async (c: pg.Client): Promise<boolean> => {
    const args = [LEASE_LOCK_CLASS, opts.pbxName];
    if ((await within(c.query<{ held: boolean }>(TAKE_LEASE, args), timing.checkTimeoutMs)).rows[0]?.held !== true) {
      await sayHolder(c, args);
      return false;
    }
    if ((await within(c.query<{ held: boolean }>(TAKE_OLD_LEASE, args), timing.checkTimeoutMs)).rows[0]?.held === true) return true;
    const oldHolder = await within(c.query<{ ours: boolean }>(OLD_LEASE_HOLDER, [...args, sessionName]), timing.checkTimeoutMs);
    if (!oldHolder.rows.some((r) => r.ours)) return true;
    await within(c.query(GIVE_LEASE_BACK, args), timing.checkTimeoutMs);
    if (!oldHolderSaid) {
      log.warn({ code: 'PBXHOOK_LEASE_OLD_HOLDER' }, 'standby lease: an older pbxhook (two-key lease) follows this PBX; waiting until it stops (upgrade every daemon of this PBX)');
      oldHolderSaid = true;
    }
    return false;
  };

  /** Logs the holder when it first shows or changes: the standby's line and its /healthz say the same. */
  const sayHolder = async (c: pg.Client, args: unknown[]): Promise<void> => {
    const rows = (await within(c.query<{ holder: string | null }>(LEASE_HOLDER, args), timing.checkTimeoutMs)).rows;
    // Freed between the two queries: the next poll takes it, the last holder is said until then.
    const seen = rows[0] === undefined ? holder : (rows[0].holder ?? 'another session');
    if (seen !== holder && seen !== undefined) log.info({ holder: seen }, `standby lease: ${waitingFor(seen)}`);
    holder = seen;
  };

  const connect = async (): Promise<pg.Client> => {
    const c = new pg.Client({
      connectionString: opts.url,
      application_name: sessionName,
      options: leaseSessionOptions(timing),
      keepAlive: true,
      keepAliveInitialDelayMillis: timing.checkMs,
      connectionTimeoutMillis: timing.connectTimeoutMs,
    });
    // A connection error outside a query (the server ended the session) must not crash the process.
    c.on('error', (err) => loseLease(`lease connection failed: ${err.message}`));
    c.on('end', () => loseLease('lease connection closed'));
    try {
      await c.connect();
    } catch (err) {
      drop(c);
      throw err;
    }
    return c;
  };

  const ask = async (): Promise<void> => {
    if (closed || role !== 'standby') return;
    try {
      client ??= await connect();
      if (closed) return drop(client);
      const sentAt = now();
      const held = await take(client);
      if (unreachable) log.info('standby lease: PostgreSQL reachable again');
      unreachable = false;
      if (held) {
        if (closed) return drop(client);
        role = 'active';
        holder = undefined;
        confirmedAt = sentAt;
        log.info({ takeoverSeconds: opts.takeoverSeconds }, 'standby lease held: this daemon follows the PBX');
        onAcquired();
        later(check, timing.checkMs);
        return;
      }
    } catch (err) {
      drop(client);
      client = undefined;
      if (!unreachable) log.warn({ err: err instanceof Error ? err.message : String(err), code: 'PBXHOOK_LEASE_DB' }, 'standby lease: PostgreSQL unreachable; asking again');
      unreachable = true;
    }
    later(ask, timing.pollMs);
  };

  // The liveness query: same session, so an answer proves the lock is still ours.
  const check = async (): Promise<void> => {
    if (closed || role !== 'active' || client === undefined) return;
    const sentAt = now();
    try {
      await within(client.query('SELECT 1'), timing.checkTimeoutMs);
      if (role !== 'active') return;
      confirmedAt = sentAt;
      later(check, timing.checkMs);
    } catch (err) {
      loseLease(`liveness check failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  log.info({ takeoverSeconds: opts.takeoverSeconds }, `standby lease: ${waitingFor(undefined)}`);
  void ask();

  return {
    timing,
    role: () => role,
    holder: () => (role === 'standby' ? holder : undefined),
    acquired,
    lost,
    fresh: () => role === 'active' && now() - confirmedAt <= timing.freshMs,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      const c = client;
      client = undefined;
      if (c === undefined) return;
      c.removeAllListeners('end');
      c.on('error', () => undefined);
      // A clean end releases the lock at once, so the standby need not wait for a timeout.
      await Promise.race([c.end().catch(() => undefined), new Promise((r) => setTimeout(r, timing.checkTimeoutMs).unref())]);
      drop(c);
    },
  };
}
