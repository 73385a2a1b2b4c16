import pino, { type Logger } from 'pino';

/**
 * JSON logs on stderr (stdout belongs to `pbxhook replay`'s webhook lines). Anything that could
 * carry a secret is redacted by path, whatever the caller passes.
 */
export const REDACT_PATHS = [
  'secret', 'password', 'token', 'authorization',
  '*.secret', '*.password', '*.token', '*.authorization',
  'headers.authorization', '*.headers.authorization', 'headers.Authorization', '*.headers.Authorization',
];

export function createLogger(level: string, destination: pino.DestinationStream = pino.destination(2)): Logger {
  return pino({ level, base: { service: 'pbxhook' }, redact: { paths: REDACT_PATHS, censor: '***' } }, destination);
}
