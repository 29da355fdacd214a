import { mkdirSync, statSync } from 'node:fs';

/** Result of making sure the state directory exists. */
export interface StateDirInfo {
  created: boolean;
  /** Mode bits when the directory already existed and group/others can enter it. */
  looseMode?: number;
}

/**
 * Creates the state directory with mode 0700 when missing. An existing directory is not
 * chmod-ed (it may be one the operator shares on purpose); a loose mode is reported instead.
 */
export function ensureStateDir(dir: string): StateDirInfo {
  try {
    const st = statSync(dir);
    if (!st.isDirectory()) throw new Error(`stateDir ${dir} exists and is not a directory`);
    const mode = st.mode & 0o777;
    return (mode & 0o077) !== 0 ? { created: false, looseMode: mode } : { created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return { created: true };
}
