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

export function createLogger(level: string, destination: pino.DestinationStream = stderr()): Logger {
  return pino({ level, base: { service: 'pbxhook' }, redact: { paths: REDACT_PATHS, censor: '***' } }, destination);
}

/**
 * Asynchronous: the lines logged while a write is under way go out together in the next one, so a
 * busy daemon's 'webhook delivered' lines (one per webhook) cost a write(2) per batch, not one each
 * (issue #15: that write was 4 % of the daemon's CPU at 200 FreePBX calls/s). pino flushes what is
 * left synchronously when the process exits, so the lines before an exit still all arrive.
 */
function stderr(): pino.DestinationStream {
  return pino.destination({ fd: 2, sync: false });
}
