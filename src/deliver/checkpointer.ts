/**
 * Copies the outbox's write-ahead log into the database file on a thread of its own (issue #7).
 * SQLite's automatic checkpoint runs inside a commit every 1000 pages: under load it held the
 * daemon ~6 ms every ~130 commits (copy and two fsyncs), 5 % of delivery throughput; on a PBX whose
 * disk is busy writing recordings, an fsync on the event loop can take far longer.
 *
 * The store asks for a checkpoint every `everyCommits` commits (25: about as often as SQLite would,
 * at the ~25 pages a commit of the live daemon writes); the thread runs it PASSIVE, which never
 * waits for the daemon nor blocks it. Every 100 commits was too seldom (issue #15): at 300 FreePBX
 * calls/s the log passed its limit every half second and the store's own checkpoint held the event
 * loop 7–10 ms each time, the tail of the end-to-end latency; every 25 the thread's checkpoints
 * catch up often enough for the log to start over by itself (0–2 of those stalls a run instead of
 * 11–14, for ~1–2 % more CPU on the thread). Under constant writes
 * the log never empties at a moment when it could start over, so it keeps growing: the store
 * bounds it itself (outbox-store.ts, `walLimitBytes`), checkpointing on the writing connection
 * once the log passes its limit, and the thread has already copied nearly all of it by then.
 *
 * The two never run a checkpoint at once: a second checkpoint fails at once with SQLITE_BUSY
 * (SQLite's busy handler is not called for the checkpoint lock), which would let the log pass its
 * limit. A shared word says who is checkpointing: the thread skips its turn while the store holds
 * it, and the store waits (Atomics.wait: the length of one PASSIVE copy) while the thread does.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface CheckpointerOptions {
  /** Commits between two checkpoints (default 25). */
  readonly everyCommits?: number;
  /** A thread asked nothing for this long is retired (default 10 s). */
  readonly idleMs?: number;
  /** A checkpoint failed, or the thread stopped: reported once, and the thread is stopped. */
  readonly onError: (err: Error) => void;
}

const EVERY_COMMITS = 25;

/** The shared word: nobody, the thread or the store (the writing connection) is checkpointing. */
const FREE = 0;
const THREAD_HOLDS = 1;
const STORE_HOLDS = 2;
/** The store waits at most this long for the thread's checkpoint (as long as busy_timeout). */
const HOLD_WAIT_MS = 5_000;

/** Plain CommonJS run by the worker, so it loads the same from src (tests) and dist. */
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
// A SqliteError crosses threads without its message: send the words instead.
const describe = (err) => (err && err.message ? err.message : String(err)) + (err && err.code ? ' (' + err.code + ')' : '');
const turn = new Int32Array(workerData.turn);
let db;
try {
  db = new (require(workerData.driver))(workerData.file, { fileMustExist: true });
  db.pragma('busy_timeout = 5000');
} catch (err) {
  parentPort.postMessage({ error: describe(err) });
  process.exit(1);
}
const checkpoint = () => {
  // The store is checkpointing itself: this turn is already done.
  if (Atomics.compareExchange(turn, 0, ${FREE}, ${THREAD_HOLDS}) !== ${FREE}) return;
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    parentPort.postMessage({ error: describe(err) });
  } finally {
    Atomics.store(turn, 0, ${FREE});
    Atomics.notify(turn, 0);
  }
};
parentPort.on('message', (m) => {
  if (m === 'checkpoint') return checkpoint();
  db.close();
  parentPort.close();
});
`;

/**
 * A thread with no checkpoint asked of it for this long is retired, and the next request starts
 * another: each is a whole V8 isolate (~10 MB of RSS), which a quiet daemon does not need (issue
 * #15, memory). Starting one costs a few milliseconds, off the event loop, at most once per
 * `everyCommits` commits.
 */
const IDLE_MS = 10_000;

export class Checkpointer {
  private worker: Worker | undefined;
  private readonly everyCommits: number;
  private readonly idleMs: number;
  private readonly turn = new Int32Array(new SharedArrayBuffer(4));
  private readonly start: () => Worker;
  private idle: NodeJS.Timeout | undefined;
  private commits = 0;
  private stopped = false;
  private lastExit: Promise<void> = Promise.resolve();

  constructor(file: string, o: CheckpointerOptions) {
    this.everyCommits = o.everyCommits ?? EVERY_COMMITS;
    this.idleMs = o.idleMs ?? IDLE_MS;
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.start = () => {
      const worker = new Worker(THREAD, { eval: true, workerData: { file, driver, turn: this.turn.buffer } });
      // The first failure is reported; the store then stops this thread and checkpoints itself.
      // A retired thread's exit is no failure.
      const fail = (message: string): void => {
        if (this.stopped || worker !== this.worker) return;
        this.stop();
        o.onError(new Error(`outbox checkpoint thread (${file}): ${message}`));
      };
      worker.on('message', (m: { error: string }) => fail(m.error));
      worker.on('error', (err: unknown) => fail(err instanceof Error ? err.message : String(err)));
      this.lastExit = new Promise((resolve) => worker.once('exit', () => resolve()));
      worker.on('exit', (code) => fail(`exited (${code})`));
      // A checkpoint thread alone never keeps the daemon alive.
      worker.unref();
      return worker;
    };
  }

  /** Resolves when the latest thread has ended, however it ended (at once if none ever started). */
  get exited(): Promise<void> {
    return this.lastExit;
  }

  /** True while a thread is up (started by a request, not yet retired). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  /** Told of every commit; every `everyCommits`th asks the thread, started if need be, for a checkpoint. */
  committed(): void {
    if (this.stopped || ++this.commits < this.everyCommits) return;
    this.commits = 0;
    this.worker ??= this.start();
    this.worker.postMessage('checkpoint');
    if (this.idle) this.idle.refresh();
    else this.idle = setTimeout(() => this.retire(), this.idleMs).unref();
  }

  /** Its connection closes after the checkpoint under way, if any; the shared word stays valid. */
  private retire(): void {
    this.idle = undefined;
    const worker = this.worker;
    this.worker = undefined;
    worker?.postMessage('stop');
  }

  /**
   * Runs `fn` (the store's own checkpoint) while the thread runs none: waits for the one under
   * way, if any, and keeps the thread from starting another until `fn` returns. Should the thread
   * hold its turn past HOLD_WAIT_MS (a disk that hangs), `fn` runs anyway and SQLite's checkpoint
   * lock decides.
   */
  exclusive<T>(fn: () => T): T {
    const deadline = performance.now() + HOLD_WAIT_MS;
    let held = false;
    for (;;) {
      const was = Atomics.compareExchange(this.turn, 0, FREE, STORE_HOLDS);
      if (was === FREE) {
        held = true;
        break;
      }
      const left = deadline - performance.now();
      if (left <= 0) break;
      Atomics.wait(this.turn, 0, was, left);
    }
    try {
      return fn();
    } finally {
      if (held) {
        Atomics.store(this.turn, 0, FREE);
        Atomics.notify(this.turn, 0);
      }
    }
  }

  /** Its connection closes after the checkpoint under way, if any. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.idle);
    this.retire();
  }
}
