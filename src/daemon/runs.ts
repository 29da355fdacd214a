// A row per daemon start in the state database, closed on a clean stop. A row left open means
// the previous process died (crash, kill -9, power loss): the next start reports it.
import type { StateDb } from '../store/db.js';
import { writeTx } from '../store/db.js';

/** The previous run that never recorded a clean stop, if any. */
export interface CrashedRun {
  pid: number;
  version: string;
  startedAt: number;
}

/** Records this start; returns the id of the new run and the previous run if it crashed. */
export function recordStart(db: StateDb, version: string, now = Date.now()): { runId: number; crashed: CrashedRun | null } {
  return writeTx(db, () => {
    const prev = db
      .prepare('SELECT pid, version, started_at AS startedAt, stopped_at AS stoppedAt FROM daemon_runs ORDER BY id DESC LIMIT 1')
      .get() as (CrashedRun & { stoppedAt: number | null }) | undefined;
    const info = db.prepare('INSERT INTO daemon_runs (pid, version, started_at) VALUES (?, ?, ?)').run(process.pid, version, now);
    const crashed = prev && prev.stoppedAt === null ? { pid: prev.pid, version: prev.version, startedAt: prev.startedAt } : null;
    return { runId: Number(info.lastInsertRowid), crashed };
  });
}

/** Marks the run as cleanly stopped. */
export function recordStop(db: StateDb, runId: number, now = Date.now()): void {
  writeTx(db, () => {
    db.prepare('UPDATE daemon_runs SET stopped_at = ? WHERE id = ?').run(now, runId);
  });
}
