/**
 * Progress for people watching a terminal: `pbxhook record`'s line and `pbxhook replay`'s bar.
 * The texts are pure functions (unit-tested); StatusLine does the in-place drawing on a TTY.
 */

/** 1234567 → "1.2 MB": decimal units, as `ls -h --si` and file managers show sizes. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** 312000 → "5m12s", 4000 → "4s". */
export function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  return m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

const count = (n: number, one: string, many = `${one}s`): string => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

export interface Counts {
  readonly bytes: number;
  readonly events: number;
  readonly calls: number;
}

/** `1,234 events, 12 calls, 3.4 MB`. */
export function describeCounts(c: Counts): string {
  return `${count(c.events, 'event')}, ${count(c.calls, 'call')}, ${formatBytes(c.bytes)}`;
}

/** `[##########..........]  50%  19 MB / 38 MB  1,234 events  12 calls`, at most `columns` wide. */
export function progressBar(c: Counts & { readonly total: number }, columns = 80): string {
  const fraction = c.total > 0 ? Math.min(1, c.bytes / c.total) : 0;
  const tail = `${String(Math.floor(fraction * 100)).padStart(3)}%  ${formatBytes(c.bytes)} / ${formatBytes(c.total)}  ` +
    `${count(c.events, 'event')}  ${count(c.calls, 'call')}`;
  // The bar takes what the text leaves, 10 to 30 cells; a narrow terminal gets the text alone.
  const cells = Math.min(30, columns - tail.length - 4);
  if (cells < 10) return tail.slice(0, Math.max(0, columns - 1));
  const done = Math.round(fraction * cells);
  return `[${'#'.repeat(done)}${'.'.repeat(cells - done)}]  ${tail}`;
}

/** Below this a replay is over before a bar could tell anything. */
export const BAR_MIN_BYTES = 1_000_000;

/**
 * The bar only for a person at a terminal: stdout a TTY (a pipe or file must get exactly the
 * webhook lines, nothing else) and stderr one too (`\r` and erase codes would litter a log file).
 */
export function wantsProgressBar(io: { stdoutTTY: boolean; stderrTTY: boolean; traceBytes: number }): boolean {
  return io.stdoutTTY && io.stderrTTY && io.traceBytes > BAR_MIN_BYTES;
}

const ERASE_LINE = '\r\x1b[K';

/** One line on a terminal, redrawn in place at most every `everyMs`, erased on demand. */
export class StatusLine {
  private shown = false;
  private last: number;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly everyMs: number,
    private readonly now: () => number = Date.now,
  ) {
    // The first draw waits one interval too: a run shorter than that never flashes a bar.
    this.last = now();
  }

  /** Draws `text()` unless the last draw was under `everyMs` ago; `force` draws anyway. */
  update(text: () => string, force = false): void {
    const t = this.now();
    if (!force && t - this.last < this.everyMs) return;
    this.last = t;
    const columns = this.out.columns || 80; // 0 on a pty nobody sized
    this.out.write(`${ERASE_LINE}${text().slice(0, Math.max(0, columns - 1))}`);
    this.shown = true;
  }

  /** Removes the line, so the next write (a webhook line, a log line) starts on a clean row. */
  clear(): void {
    if (!this.shown) return;
    this.out.write(ERASE_LINE);
    this.shown = false;
  }
}

/** `pbxhook replay`'s bar on stderr, or undefined when nobody is watching (see wantsProgressBar). */
export function replayProgressBar(
  traceBytes: number,
  io: { stdout: NodeJS.WriteStream; stderr: NodeJS.WriteStream } = process,
): { update: (p: { bytesRead: number; events: number; calls: number }) => void; clear: () => void } | undefined {
  if (!wantsProgressBar({ stdoutTTY: io.stdout.isTTY === true, stderrTTY: io.stderr.isTTY === true, traceBytes })) return undefined;
  const line = new StatusLine(io.stderr, 100);
  return {
    update: (p) => line.update(() => progressBar({ bytes: p.bytesRead, total: traceBytes, events: p.events, calls: p.calls }, io.stderr.columns || 80)),
    clear: () => line.clear(),
  };
}
