// Preparing the control socket's path. The dial-first check doubles as a single-instance guard:
// a socket that answers belongs to a live daemon; one that refuses is a stale file to remove.
import { connect } from 'node:net';
import { chmodSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { assertSocketPathFits } from '../platform/paths.js';

/** Thrown when a live daemon already answers on the socket path. */
export class SocketInUseError extends Error {
  constructor(path: string) {
    super(`another daemon is already listening on ${path}; stop it first, or use another --socket`);
    this.name = 'SocketInUseError';
  }
}

/** What preparing the path found, for the log. */
export interface SocketPrep {
  removedStale: boolean;
  createdDir: boolean;
  /** Set when the directory already existed and others can enter it. */
  looseDirMode?: number;
  /** Set when an existing directory was opened to other users (the client socket's). */
  openedDir?: boolean;
}

/**
 * Makes the socket path ready to listen on: checks its length, creates its directory with mode
 * 0700, refuses when a daemon answers there, and removes a stale socket file.
 */
export async function prepareSocketPath(path: string, opts: { dirMode?: number } = {}): Promise<SocketPrep> {
  const dirMode = opts.dirMode ?? 0o700;
  assertSocketPathFits(path);
  const dir = dirname(path);
  let createdDir = false;
  let looseDirMode: number | undefined;
  let openedDir = false;
  try {
    const st = statSync(dir);
    if (!st.isDirectory()) throw new Error(`socket directory ${dir} exists and is not a directory`);
    if ((st.mode & 0o077 & ~dirMode) !== 0) looseDirMode = st.mode & 0o777;
    // A directory meant for other users (the client socket's) that they cannot enter is opened
    // to the mode asked for, when it is ours (systemd creates runtime directories 0700).
    if ((dirMode & 0o005) !== 0 && (st.mode & dirMode) !== dirMode && st.uid === process.getuid?.()) {
      chmodSync(dir, (st.mode & 0o777) | dirMode);
      openedDir = true;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(dir, { recursive: true, mode: dirMode });
    chmodSync(dir, dirMode); // the umask (0077 under the service units) would narrow it
    createdDir = true;
  }

  let removedStale = false;
  let isSocket = false;
  try {
    const st = lstatSync(path);
    if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
    isSocket = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (isSocket) {
    if (await socketAnswers(path)) throw new SocketInUseError(path);
    unlinkSync(path);
    removedStale = true;
  }
  return { removedStale, createdDir, ...(openedDir ? { openedDir } : {}), ...(looseDirMode !== undefined ? { looseDirMode } : {}) };
}

/** True when something accepts connections on the unix socket within timeoutMs. */
export function socketAnswers(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ path });
    const done = (answered: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(answered);
    };
    // A live but wedged daemon that accepts and never answers still counts as live.
    const timer = setTimeout(() => done(true), timeoutMs);
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}
