/**
 * Copies the outbox's write-ahead log into the database file on a thread of its own (issue #7).
 * SQLite's automatic checkpoint runs inside a commit every 1000 pages: under load it held the
 * daemon ~6 ms every ~130 commits (copy and two fsyncs), 5 % of delivery throughput; on a PBX whose
 * disk is busy writing recordings, an fsync on the event loop can take far longer.
 *
 * The store asks for a checkpoint every `everyCommits` commits (about as often as SQLite would);
 * the thread runs it PASSIVE, which never waits for the daemon nor blocks it. Under constant writes
 * the log never empties at a moment when it could start over, so once it passes `restartPages` the
 * thread says so and the store checkpoints once itself, between two commits: the thread has
 * already copied nearly all of it, and the next commit starts the log over. (A RESTART checkpoint
 * from the thread would make the daemon's commit sleep in SQLite's busy handler, milliseconds at a
 * time: that cost the end-to-end p99 more than it saved.)
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface CheckpointerOptions {
  /** Commits between two checkpoints (default 100). */
  readonly everyCommits?: number;
  /** Log length, in pages, past which the writing connection must checkpoint once (default 4096). */
  readonly restartPages?: number;
  /** A checkpoint failed, or the thread stopped: reported once, and the thread is stopped. */
  readonly onError: (err: Error) => void;
  /** The log passed `restartPages`: checkpoint once on the writing connection so that it starts over. */
  readonly onLongLog: () => void;
}

/** Plain CommonJS run by the worker, so it loads the same from src (tests) and dist. */
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
// A SqliteError crosses threads without its message: send the words instead.
const describe = (err) => (err && err.message ? err.message : String(err)) + (err && err.code ? ' (' + err.code + ')' : '');
let db;
try {
  db = new (require(workerData.driver))(workerData.file, { fileMustExist: true });
  db.pragma('busy_timeout = 5000');
} catch (err) {
  parentPort.postMessage({ error: describe(err) });
  process.exit(1);
}
const checkpoint = () => {
  try {
    const [{ log }] = db.pragma('wal_checkpoint(PASSIVE)');
    if (log > workerData.restartPages) parentPort.postMessage({ longLog: log });
  } catch (err) {
    parentPort.postMessage({ error: describe(err) });
  }
};
parentPort.on('message', (m) => {
  if (m === 'checkpoint') return checkpoint();
  db.close();
  parentPort.close();
});
`;

export class Checkpointer {
  private readonly worker: Worker;
  private readonly everyCommits: number;
  private commits = 0;
  private stopped = false;

  constructor(file: string, o: CheckpointerOptions) {
    this.everyCommits = o.everyCommits ?? 100;
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(THREAD, {
      eval: true,
      workerData: { file, driver, restartPages: o.restartPages ?? 4096 },
    });
    // The first failure is reported; the store then stops this thread and checkpoints itself.
    const fail = (message: string): void => {
      if (this.stopped) return;
      this.stop();
      o.onError(new Error(`outbox checkpoint thread (${file}): ${message}`));
    };
    this.worker.on('message', (m: { error?: string; longLog?: number }) => (m.error !== undefined ? fail(m.error) : o.onLongLog()));
    this.worker.on('error', (err: unknown) => fail(err instanceof Error ? err.message : String(err)));
    this.worker.on('exit', (code) => fail(`exited (${code})`));
    // A checkpoint thread alone never keeps the daemon alive.
    this.worker.unref();
  }

  /** Told of every commit; every `everyCommits`th asks the thread for a checkpoint. */
  committed(): void {
    if (this.stopped || ++this.commits < this.everyCommits) return;
    this.commits = 0;
    this.worker.postMessage('checkpoint');
  }

  /** Its connection closes after the checkpoint under way, if any. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.worker.postMessage('stop');
  }
}
