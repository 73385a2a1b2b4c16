/**
 * replay's webhook lines on stdout, gathered into large writes: one write per line was 12 % of a
 * replay (issue #15), a synchronous system call each when stdout is a file or a pipe. The bytes
 * are the same, in the same order; lines go out once ~64 KB are waiting, and whenever the caller
 * flushes (after each chunk of the trace, before the progress bar is drawn, at the end).
 *
 * A reader that closes its end early (`pbxhook replay … | head -1`) is no error: the write fails
 * with EPIPE and, as `yes | head` does, replay stops reading the trace and exits 0 (issue #12). Any
 * other write error stops it too, and is thrown once the replay has stopped.
 */
const FLUSH_AT = 64 * 1024;

export class StdoutLines {
  private readonly stopper = new AbortController();
  /** Aborted once stdout cannot take another line. */
  readonly signal = this.stopper.signal;
  /** A write error other than the reader leaving (a full disk…). */
  failure: Error | undefined;
  private pending = '';

  /** `beforeWrite` runs before each write: the progress bar erases itself so the lines start on a clean row. */
  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly beforeWrite: () => void = () => undefined,
  ) {
    // Listening is what keeps an EPIPE from being an uncaught 'error' event that kills the process.
    out.on('error', (err) => this.fail(err));
  }

  write(line: string): void {
    if (this.signal.aborted) return;
    this.pending += line;
    if (this.pending.length >= FLUSH_AT) this.flush();
  }

  /** Writes whatever is waiting. */
  readonly flush = (): void => {
    if (this.pending === '' || this.signal.aborted) return;
    this.beforeWrite();
    this.out.write(this.pending);
    this.pending = '';
    // A failed pipe write is recorded at once; its 'error' event only follows on a later tick.
    if (this.out.errored) this.fail(this.out.errored);
  };

  /**
   * Flushes, then, while the pipe is full, waits for it to drain (Node would otherwise buffer every
   * further line in memory): replay keeps its reader's pace, and sees the reader leave after a
   * chunk, not after the trace.
   */
  readonly drained = (): Promise<void> | undefined => {
    this.flush();
    if (!this.out.writableNeedDrain || this.signal.aborted) return undefined;
    return new Promise((resolve) => {
      const done = (): void => {
        this.out.off('drain', done).off('close', done);
        this.signal.removeEventListener('abort', done);
        resolve();
      };
      this.out.once('drain', done).once('close', done);
      this.signal.addEventListener('abort', done);
    });
  };

  private fail(err: Error): void {
    if (this.signal.aborted) return;
    if ((err as NodeJS.ErrnoException).code !== 'EPIPE') this.failure = err;
    this.stopper.abort(err);
  }
}
