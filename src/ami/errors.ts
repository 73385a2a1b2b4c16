/**
 * Typed AMI connection errors, one class per failure with a stable `code`:
 *
 * | code                  | class           | retryable | when                                          |
 * |-----------------------|-----------------|-----------|-----------------------------------------------|
 * | `PBXHOOK_AMI_AUTH`    | AmiAuthError    | no        | Asterisk answered the Login with an error     |
 * | `PBXHOOK_AMI_CONNECT` | AmiConnectError | yes       | refused, unreachable, timed out, closed early |
 *
 * Messages name host:port and the username so an operator can act on them, never the secret.
 */

export class AmiAuthError extends Error {
  readonly code = 'PBXHOOK_AMI_AUTH';
  /** Retrying with the same credentials cannot succeed. */
  readonly retryable = false;

  constructor(
    readonly host: string,
    readonly port: number,
    readonly username: string,
    /** What Asterisk said (`Message:` of the Login response), e.g. "Authentication failed". */
    readonly serverMessage: string,
  ) {
    super(`AMI login to ${host}:${port} as user "${username}" was rejected: ${serverMessage || 'no reason given'}`);
    this.name = 'AmiAuthError';
  }
}

export class AmiConnectError extends Error {
  readonly code = 'PBXHOOK_AMI_CONNECT';
  /** The PBX may come back; a reconnect policy may try again. */
  readonly retryable = true;

  constructor(
    readonly host: string,
    readonly port: number,
    /** Short cause: a socket error code (ECONNREFUSED…) or what went wrong. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot connect to AMI at ${host}:${port}: ${reason}`, options);
    this.name = 'AmiConnectError';
  }
}

export type AmiClientError = AmiAuthError | AmiConnectError;
