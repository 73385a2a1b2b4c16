/**
 * Which PostgreSQL failures mean "the outbox cannot be written now" rather than "this write is
 * wrong" (issue #14 item 3, for a database on the network): the worker keeps everything and tries
 * again, dropping nothing. SQLSTATE classes from the PostgreSQL manual, Appendix A.
 */

/** Whole classes: 08 connection exception, 53 insufficient resources (disk full, out of memory,
 * too many connections), 57 operator intervention (shutdown, cancelled), 58 system error (I/O). */
const CLASSES = new Set(['08', '53', '57', '58']);

/** Single codes: 40001 serialization failure, 40P01 deadlock, 55P03 lock not available,
 * 25006 read-only transaction (a primary that became a standby after a failover). */
const CODES = new Set(['40001', '40P01', '55P03', '25006']);

/** Node's socket errors, and node-postgres's words for a connection it lost or could not open. */
const NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const PG_MESSAGES = /Connection terminated|connection error|not queryable|timeout exceeded when trying to connect|Client was closed/i;

export function isUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    if (NODE_CODES.has(code) || CODES.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code) && CLASSES.has(code.slice(0, 2))) return true;
  }
  return err instanceof Error && PG_MESSAGES.test(err.message);
}
