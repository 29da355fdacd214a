// Which daemon a CLI command talks to: the same resolution the daemon uses, from the same
// functions, so the two cannot drift apart.
import { ConfigError } from '../config/errors.js';
import { loadConfig, locateConfig, ignoredNotice } from '../config/load.js';
import { ControlClient } from '../control/client.js';
import { currentPlatform, defaultStateDir, resolveSocketPath, type ResolvedPath } from '../platform/paths.js';
import { VERSION } from '../version.js';

/** What the CLI resolved: the socket it will dial and the config file it would use. */
export interface CliTarget {
  socket: ResolvedPath;
  /** The config file this CLI would use, or null when none is found. */
  configPath: string | null;
  /** Why the config could not be used for socket resolution, if it could not. */
  configProblem: string | null;
  /** Notice about ignored candidate config files, if any. */
  ignoredNotice: string | null;
}

/** Resolves the CLI's target. A missing or invalid config does not stop a client command; it is reported instead. */
export function resolveCliTarget(flags: { config?: string | undefined; socket?: string | undefined }): CliTarget {
  const p = currentPlatform();
  const loc = locateConfig(flags.config, p);
  let stateDir = defaultStateDir(p);
  let configSocket: string | undefined;
  let configProblem: string | null = null;
  if (loc.chosen) {
    try {
      const loaded = loadConfig(flags.config, p);
      stateDir = loaded.config.stateDir;
      configSocket = loaded.config.socket;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      configProblem = err.message;
    }
  }
  return {
    socket: resolveSocketPath({ flag: flags.socket, configSocket, stateDir, platform: p }),
    configPath: loc.chosen?.path ?? null,
    configProblem,
    ignoredNotice: ignoredNotice(loc),
  };
}

/** The environment variable a client's token is read from (sent as `Authorization: Bearer`). */
export const TOKEN_ENV = 'WA_SUPERVISOR_TOKEN';

/** A client for the target that warns on stderr once when daemon and CLI versions differ. */
export function clientFor(target: CliTarget, stderr: NodeJS.WritableStream, env: NodeJS.ProcessEnv = process.env): ControlClient {
  const token = env[TOKEN_ENV]?.trim();
  return new ControlClient({
    socket: target.socket,
    clientName: 'wa-supervisor-cli',
    ...(token ? { token } : {}),
    retryRefusedMs: 2000,
    onVersionMismatch: (v) =>
      stderr.write(`warning: this CLI is version ${VERSION} but the daemon runs ${v}; restart the daemon after upgrading\n`),
  });
}
