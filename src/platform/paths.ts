// Where files live by default. Daemon and CLI both resolve paths here and nowhere else,
// so they can never disagree about which socket or config file is "the default".
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** The name used for directories, files and service labels. */
export const APP_NAME = 'wa-supervisor';

/**
 * Longest unix socket path we accept, in bytes. sun_path holds 104 bytes on macOS and 108 on
 * Linux including the terminator; libuv fails with EINVAL (older Node truncated silently).
 */
export const MAX_SOCKET_PATH_BYTES = 103;

/** The inputs path resolution depends on, injectable so tests need not touch the real environment. */
export interface PlatformEnv {
  platform: NodeJS.Platform;
  home: string;
  env: NodeJS.ProcessEnv;
}

/** The current process's platform, home directory and environment. */
export function currentPlatform(): PlatformEnv {
  return { platform: process.platform, home: homedir(), env: process.env };
}

/** The one platform-default config file: XDG config dir on Linux, Application Support on macOS. */
export function defaultConfigPath(p: PlatformEnv = currentPlatform()): string {
  if (p.platform === 'darwin') return join(p.home, 'Library', 'Application Support', APP_NAME, 'config.json');
  const base = nonEmpty(p.env.XDG_CONFIG_HOME) ?? join(p.home, '.config');
  return join(base, APP_NAME, 'config.json');
}

/**
 * The default state directory (database, auth state, lock). systemd's StateDirectory= wins when
 * set, so a system unit needs no path in its config.
 */
export function defaultStateDir(p: PlatformEnv = currentPlatform()): string {
  const fromSystemd = nonEmpty(p.env.STATE_DIRECTORY);
  if (fromSystemd) return fromSystemd.split(':')[0]!;
  if (p.platform === 'darwin') return join(p.home, 'Library', 'Application Support', APP_NAME);
  const base = nonEmpty(p.env.XDG_STATE_HOME) ?? join(p.home, '.local', 'state');
  return join(base, APP_NAME);
}

/**
 * The default control-socket path: systemd's RuntimeDirectory= when set, else a private
 * directory under $XDG_RUNTIME_DIR (a per-user tmpfs), else the state directory.
 */
export function defaultSocketPath(stateDir: string, p: PlatformEnv = currentPlatform()): string {
  const fromSystemd = nonEmpty(p.env.RUNTIME_DIRECTORY);
  if (fromSystemd) return join(fromSystemd.split(':')[0]!, `${APP_NAME}.sock`);
  const runtime = nonEmpty(p.env.XDG_RUNTIME_DIR);
  if (runtime && p.platform !== 'darwin') return join(runtime, APP_NAME, `${APP_NAME}.sock`);
  return join(stateDir, `${APP_NAME}.sock`);
}

/** Where a resolved path came from, for messages such as "socket /x (from --socket)". */
export type PathSource = 'flag' | 'env' | 'config' | 'default';

/** A path together with where it came from. */
export interface ResolvedPath {
  path: string;
  source: PathSource;
}

/** The environment variable that overrides the socket path for daemon and CLI. */
export const SOCKET_ENV = 'WA_SUPERVISOR_SOCKET';
/** The environment variable that names the config file. */
export const CONFIG_ENV = 'WA_SUPERVISOR_CONFIG';

/**
 * Resolves the control socket path: --socket, then WA_SUPERVISOR_SOCKET, then the config's
 * `socket`, then the default. Daemon and CLI call this same function.
 */
export function resolveSocketPath(opts: {
  flag?: string | undefined;
  configSocket?: string | undefined;
  stateDir: string;
  platform?: PlatformEnv;
}): ResolvedPath {
  const p = opts.platform ?? currentPlatform();
  if (nonEmpty(opts.flag)) return { path: resolve(opts.flag!), source: 'flag' };
  const fromEnv = nonEmpty(p.env[SOCKET_ENV]);
  if (fromEnv) return { path: resolve(fromEnv), source: 'env' };
  if (nonEmpty(opts.configSocket)) return { path: resolve(opts.configSocket!), source: 'config' };
  return { path: defaultSocketPath(opts.stateDir, p), source: 'default' };
}

/** Describes a path source in words for messages. */
export function describeSource(source: PathSource): string {
  switch (source) {
    case 'flag':
      return 'from --socket';
    case 'env':
      return `from ${SOCKET_ENV}`;
    case 'config':
      return 'from the config file';
    case 'default':
      return 'default';
  }
}

/** Throws when a socket path is too long for sun_path, naming the path and its length. */
export function assertSocketPathFits(path: string): void {
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new Error(
      `socket path is ${bytes} bytes, longer than the ${MAX_SOCKET_PATH_BYTES} a unix socket allows: ${path} ` +
        `(set a shorter one with --socket, ${SOCKET_ENV} or "socket" in the config)`,
    );
  }
}

/** Expands a leading "~/" to the home directory. */
export function expandHome(path: string, home: string = homedir()): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return join(home, path.slice(2));
  return path;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v !== undefined && v !== '' ? v : undefined;
}

/** The systemd unit name and the launchd label the service files use. */
export const SYSTEMD_UNIT = `${APP_NAME}.service`;
export const LAUNCHD_LABEL = 'com.wa-supervisor.daemon';

/** How to look at the service on this platform, for "cannot connect" hints. */
export function serviceStatusHint(platform: NodeJS.Platform = process.platform): string {
  return platform === 'darwin'
    ? `launchctl print gui/$(id -u)/${LAUNCHD_LABEL}`
    : `systemctl --user status ${APP_NAME}  (or: sudo systemctl status ${APP_NAME})`;
}
