/**
 * One sending process per state_dir: a second `pbxhook run` (or `replay --send --state-dir` on it)
 * on the same outbox would claim the same webhooks and send each twice. The lock is SQLite's own
 * file lock on a small database held in exclusive locking mode; the OS drops it when the process
 * ends, however it ends (kill -9 included), so a crash never leaves a stale lock behind.
 * `pbxhook outbox stats|list|retry|purge` do not take it: they share the outbox with the daemon.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export const LOCK_FILE = 'outbox.lock';
/** Beside the lock, for the admin who meets the error: which process holds the state_dir. */
export const PID_FILE = 'pbxhook.pid';

export class StateDirBusyError extends Error {
  override readonly name = 'StateDirBusyError';
  readonly code = 'PBXHOOK_STATE_DIR_BUSY';
  constructor(
    readonly stateDir: string,
    readonly holderPid: number | undefined,
  ) {
    super(
      `state_dir ${stateDir} is in use by another pbxhook${holderPid === undefined ? '' : ` (pid ${holderPid})`}: ` +
        'one daemon per state_dir, or every webhook would be sent twice; stop the other one or give this one its own state_dir',
    );
  }
}

export interface StateDirLock {
  release(): void;
}

/** Takes the state_dir's lock or throws StateDirBusyError at once (no waiting). */
export function holdStateDir(stateDir: string): StateDirLock {
  const db = new Database(path.join(stateDir, LOCK_FILE), { timeout: 0 });
  try {
    db.pragma('journal_mode = MEMORY'); // nothing here is worth a journal file beside the outbox
    db.pragma('locking_mode = EXCLUSIVE');
    // A write takes the exclusive lock; in this mode the connection keeps it until it closes.
    db.exec('CREATE TABLE IF NOT EXISTS holder (one INTEGER PRIMARY KEY CHECK (one = 1), pid INTEGER NOT NULL, since INTEGER NOT NULL)');
    db.prepare('INSERT OR REPLACE INTO holder (one, pid, since) VALUES (1, ?, ?)').run(process.pid, Date.now());
  } catch (err) {
    db.close();
    if ((err as { code?: unknown }).code === 'SQLITE_BUSY') throw new StateDirBusyError(stateDir, holderPid(stateDir));
    throw err;
  }
  const pidFile = path.join(stateDir, PID_FILE);
  writeFileSync(pidFile, `${process.pid}\n`, { mode: 0o640 });
  return {
    release() {
      if (!db.open) return;
      rmSync(pidFile, { force: true });
      db.close();
    },
  };
}

function holderPid(stateDir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path.join(stateDir, PID_FILE), 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
