/**
 * One log line for PBX input skipped, however much of it there is (issue #14): the first skip of a
 * reason is logged at once, later ones are counted and told in one line per `everyMs` while they
 * last, so 256k odd frames make a line or two, not 256k. Nothing is lost: each line carries how
 * many were skipped since the one before, and `flush()` tells the rest (at stop).
 */

/** The part of a pino logger used here. */
export interface SkipLogSink {
  warn(obj: object, msg: string): void;
}

const DEFAULT_EVERY_MS = 10_000;

interface Pending {
  /** Skipped since the last line of this reason. */
  count: number;
  timer: NodeJS.Timeout | undefined;
}

export class SkipLog {
  private readonly pending = new Map<string, Pending>();

  /**
   * `describe(reason)`: the line's message and stable code; `fields` go on every line (where the
   * input came from, never a secret).
   */
  constructor(
    private readonly log: SkipLogSink,
    private readonly describe: (reason: string) => { code: string; msg: string },
    private readonly fields: object = {},
    private readonly everyMs = DEFAULT_EVERY_MS,
  ) {}

  /** One input skipped for `reason`; `detail` goes on the line only when it is written at once. */
  skipped(reason: string, detail: object = {}): void {
    const p = this.pending.get(reason);
    if (p) {
      p.count++;
      return;
    }
    // Quiet for a while: this one is told now, the next ones when the interval ends.
    const entry: Pending = { count: 0, timer: undefined };
    this.pending.set(reason, entry);
    this.write(reason, 1, detail);
    entry.timer = setTimeout(() => this.intervalEnded(reason), this.everyMs);
    entry.timer.unref();
  }

  /** Tells what is still untold (at stop). */
  flush(): void {
    for (const [reason, p] of this.pending) {
      clearTimeout(p.timer);
      if (p.count > 0) this.write(reason, p.count, {});
    }
    this.pending.clear();
  }

  private intervalEnded(reason: string): void {
    const p = this.pending.get(reason);
    if (!p) return;
    if (p.count === 0) {
      this.pending.delete(reason);
      return;
    }
    this.write(reason, p.count, {});
    p.count = 0;
    p.timer = setTimeout(() => this.intervalEnded(reason), this.everyMs);
    p.timer.unref();
  }

  private write(reason: string, skipped: number, detail: object): void {
    const { code, msg } = this.describe(reason);
    this.log.warn({ ...this.fields, code, reason, skipped, ...detail }, msg);
  }
}
