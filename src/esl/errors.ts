/**
 * Typed ESL connection errors, one class per failure with a stable `code` (as src/ami/errors.ts):
 *
 * | code                  | class           | retryable | when                                              |
 * |-----------------------|-----------------|-----------|---------------------------------------------------|
 * | `PBXHOOK_ESL_AUTH`    | EslAuthError    | no        | FreeSWITCH answered `auth` with `-ERR` (bad password, ACL) |
 * | `PBXHOOK_ESL_CONNECT` | EslConnectError | yes       | refused, unreachable, timed out, closed early, subscription refused |
 *
 * Messages name host:port so an operator can act on them, never the password.
 */

export class EslAuthError extends Error {
  readonly code = 'PBXHOOK_ESL_AUTH';
  /** Retrying with the same password cannot succeed. */
  readonly retryable = false;

  constructor(
    readonly host: string,
    readonly port: number,
    /** What FreeSWITCH said (`Reply-Text` of the auth reply), e.g. "-ERR invalid". */
    readonly serverMessage: string,
  ) {
    super(`ESL auth to ${host}:${port} was rejected: ${serverMessage || 'no reason given'}`);
    this.name = 'EslAuthError';
  }
}

export class EslConnectError extends Error {
  readonly code = 'PBXHOOK_ESL_CONNECT';
  /** FreeSWITCH may come back; a reconnect policy may try again. */
  readonly retryable = true;

  constructor(
    readonly host: string,
    readonly port: number,
    /** Short cause: a socket error code (ECONNREFUSED…) or what went wrong. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot connect to FreeSWITCH ESL at ${host}:${port}: ${reason}`, options);
    this.name = 'EslConnectError';
  }
}

export type EslClientError = EslAuthError | EslConnectError;
