/**
 * How often the standby lease (lease.ts) asks and checks, from `standby.takeover_seconds` alone
 * (issue #17 item 3). Pure: the numbers are the design, so they are tested apart from PostgreSQL.
 *
 * Three clocks bound a network cut between the active daemon and PostgreSQL, T = takeover:
 * - the active checks its lease connection every 0.2 T, each check given 0.2 T: it knows it has
 *   lost the lease within 0.4 T of the cut, and drops PBX input from then on (`freshMs`: a lease
 *   last confirmed more than 0.45 T ago is not trusted, whatever the timers did on a busy host);
 * - the server ends the lease session once it is idle for 0.7 T (`idle_session_timeout`: the
 *   checks keep a live one busy), or earlier by TCP keepalive / `tcp_user_timeout`, never before
 *   0.5 T after the cut: the active has stopped by then, so the two never follow the PBX at once;
 * - the standby asks for the lock every 0.2 T (1 s at most): it holds it within 0.9 T of the cut.
 * A kill -9 or a host that closes its sockets frees the lock at once: takeover is one poll away.
 */
export interface LeaseTiming {
  /** A standby asks for the lock this often. */
  readonly pollMs: number;
  /** The holder runs its liveness query this often… */
  readonly checkMs: number;
  /** …and counts the lease lost when one takes longer than this. */
  readonly checkTimeoutMs: number;
  /** A lease confirmed longer ago than this is not trusted (fencing on the daemon's side). */
  readonly freshMs: number;
  /** Server side: an idle lease session is ended after this (the lock goes with it). */
  readonly idleSessionMs: number;
  /** Server side: TCP keepalive on the lease session, in whole seconds. */
  readonly keepaliveIdleS: number;
  readonly keepaliveIntervalS: number;
  readonly keepaliveCount: number;
  /** Server side: data unacknowledged this long ends the session. */
  readonly userTimeoutMs: number;
  /** Connecting to PostgreSQL gives up after this (then tries again after pollMs). */
  readonly connectTimeoutMs: number;
}

export function leaseTiming(takeoverSeconds: number): LeaseTiming {
  const t = takeoverSeconds * 1000;
  const fifth = Math.round(t / 5);
  // Keepalive probes start at 0.5 T of silence and give up 2 probes of 0.1 T later: ≥ 0.5 T after a cut.
  const keepaliveIntervalS = Math.max(1, Math.ceil(t / 10_000));
  return {
    pollMs: Math.min(1_000, fifth),
    checkMs: fifth,
    checkTimeoutMs: fifth,
    freshMs: Math.round(t * 0.45),
    idleSessionMs: Math.round(t * 0.7),
    keepaliveIdleS: Math.max(1, Math.ceil(t / 2_000)),
    keepaliveIntervalS,
    keepaliveCount: 2,
    userTimeoutMs: Math.round(t * 0.7),
    connectTimeoutMs: Math.max(1_000, fifth),
  };
}

/**
 * The session settings the lease connection asks for at start-up (libpq `options`), so that the
 * server ends a silent session, and frees the lock, within the takeover time.
 */
export function leaseSessionOptions(timing: LeaseTiming): string {
  return [
    `idle_session_timeout=${timing.idleSessionMs}`,
    `tcp_keepalives_idle=${timing.keepaliveIdleS}`,
    `tcp_keepalives_interval=${timing.keepaliveIntervalS}`,
    `tcp_keepalives_count=${timing.keepaliveCount}`,
    `tcp_user_timeout=${timing.userTimeoutMs}`,
  ]
    .map((o) => `-c ${o}`)
    .join(' ');
}
