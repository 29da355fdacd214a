// One daemon per state directory. The lock is an SQLite database held in an EXCLUSIVE
// transaction: the kernel's fcntl lock behind it is released when the process dies in any way
// (kill -9 included), so there is no stale-lock cleanup and no PID-reuse guessing.
import Database from 'better-sqlite3';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The lock file's name inside the state directory. */
export const LOCK_FILE = 'daemon.lock';
const PID_FILE = 'daemon.pid';

/** Thrown when another live process holds the state directory. */
export class StateDirLockedError extends Error {
  readonly holderPid: number | null;
  constructor(stateDir: string, holderPid: number | null) {
    super(
      `another wa-supervisor daemon${holderPid ? ` (pid ${holderPid})` : ''} is using the state directory ${stateDir}; ` +
        'two daemons on one state directory would drive the same accounts and fight (WhatsApp answers with 440 conflict). ' +
        'Stop the other one, or give this one another stateDir.',
    );
    this.name = 'StateDirLockedError';
    this.holderPid = holderPid;
  }
}

/** A held lock on a state directory. */
export interface StateDirLock {
  release(): void;
}

/**
 * The connections of the locks held in this process. A connection nothing refers to is closed
 * when it is garbage-collected, which would free the lock silently; held here, a lock lasts
 * until release() or the end of the process, whatever the caller keeps.
 */
const held = new Set<Database.Database>();

/** Takes the state directory's lock or throws StateDirLockedError at once (no waiting). */
export function lockStateDir(stateDir: string): StateDirLock {
  const db = new Database(join(stateDir, LOCK_FILE), { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') throw new StateDirLockedError(stateDir, readHolderPid(stateDir));
    throw err;
  }
  held.add(db);
  writeFileSync(join(stateDir, PID_FILE), `${process.pid}\n`, { mode: 0o600 });
  return {
    release() {
      if (!held.delete(db)) return;
      try {
        db.exec('ROLLBACK');
      } finally {
        db.close();
      }
    },
  };
}

function readHolderPid(stateDir: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(join(stateDir, PID_FILE), 'utf8'), 10);
    return Number.isFinite(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}
