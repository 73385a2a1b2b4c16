/**
 * Copies the outbox's write-ahead log into the database file on a thread of its own (issue #7).
 * SQLite's automatic checkpoint runs inside a commit every 1000 pages: under load it held the
 * daemon ~6 ms every ~130 commits, 5 % of delivery throughput and most of the end-to-end p99.
 *
 * Here PASSIVE checkpoints, which never wait for the daemon nor block it, copy the log as it grows.
 * Under constant writes the log never empties at a moment when it could start over, so once it
 * passes `restartPages` one RESTART checkpoint holds the daemon's next commit for the little that
 * is left to copy, and the log starts over: the file stays bounded.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface CheckpointerOptions {
  readonly everyMs?: number;
  readonly restartPages?: number;
  /** A checkpoint failed, or the thread stopped: the store falls back to checkpoints in its commits. */
  readonly onError: (err: Error) => void;
}

/** Plain CommonJS run by the worker, so it loads the same from src (tests) and dist. */
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 5000');
const timer = setInterval(() => {
  try {
    const [{ log }] = db.pragma('wal_checkpoint(PASSIVE)');
    if (log > workerData.restartPages) db.pragma('wal_checkpoint(RESTART)');
  } catch (err) {
    parentPort.postMessage(err instanceof Error ? err.message : String(err));
  }
}, workerData.everyMs);
parentPort.once('message', () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export class Checkpointer {
  private readonly worker: Worker;
  private stopped = false;

  constructor(file: string, o: CheckpointerOptions) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(THREAD, {
      eval: true,
      workerData: { file, driver, everyMs: o.everyMs ?? 100, restartPages: o.restartPages ?? 4096 },
    });
    this.worker.on('message', (message: string) => o.onError(new Error(`outbox checkpoint: ${message}`)));
    this.worker.on('error', (err) => o.onError(err));
    this.worker.on('exit', (code) => {
      if (!this.stopped) o.onError(new Error(`outbox checkpoint thread exited (${code})`));
    });
    // A checkpoint thread alone never keeps the daemon alive.
    this.worker.unref();
  }

  /** Its connection closes after the checkpoint under way, if any. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.worker.postMessage('stop');
  }
}
