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

/**
 * stderr for the long-running commands (`run`, `deliver`): the lines logged in one turn of the
 * event loop are written together at its end, not one write(2) each. A busy daemon logs a line per
 * webhook delivered; a write per line was about 5 % of its CPU (issue #15). A line waits at most
 * for the end of the turn it was logged in (a kill -9 loses only that turn's, with the turn's
 * other work); `process.exit` and crashes write what waits. sonic-boom (pino's own destination)
 * does the buffering and the writing, as it did line by line before.
 */
export function turnBatchedStderr(): pino.DestinationStream {
  // Past minLength the buffer is written at once, mid-turn (sonic-boom caps it below 16 KB).
  const boom = pino.destination({ dest: 2, sync: true, minLength: 8 * 1024 });
  let queued = false;
  // flush() without a callback: a synchronous write of what waits, no fsync.
  const writeOut = (): void => {
    queued = false;
    boom.flush();
  };
  process.on('exit', writeOut);
  return {
    write(line: string): void {
      boom.write(line);
      if (queued) return;
      queued = true;
      setImmediate(writeOut);
    },
  };
}
