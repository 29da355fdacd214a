// `wa-supervisor run`: the daemon in the foreground, logging to stdout.
import { ConfigError, EX_CONFIG } from '../../config/errors.js';
import { LOG_LEVELS } from '../../config/schema.js';
import { ignoredNotice, loadConfig } from '../../config/load.js';
import { Daemon } from '../../daemon/daemon.js';
import { SocketInUseError } from '../../control/socket-file.js';
import { createLogger } from '../../log.js';
import { StateDirLockedError } from '../../store/lock.js';
import { COMMON_OPTIONS, UsageError, parseCommandArgs } from '../args.js';
import { EXIT } from '../exit-codes.js';
import type { CliIo } from '../io.js';

/** Longest a SIGTERM/SIGINT shutdown may take before the process exits anyway. */
export const STOP_DEADLINE_MS = 9000;

/** Help text for `run`. */
export const RUN_HELP = `Usage: wa-supervisor run [--config FILE] [--socket PATH] [--log-level LEVEL]

Runs the daemon in the foreground. Logs go to stdout (JSON, or pretty on a terminal).
SIGTERM or SIGINT stops it cleanly (exit 0). SIGHUP re-reads the config file: policy,
pacing, alerts, keepalive and backoff apply without dropping connections, config accounts
added or removed start or stop; an invalid file is refused (alert) and the old config kept.

Options:
  --config FILE      config file (else $WA_SUPERVISOR_CONFIG, else the platform default)
  --socket PATH      control socket (else $WA_SUPERVISOR_SOCKET, config "socket", default)
  --log-level LEVEL  override log.level: ${LOG_LEVELS.join(', ')}

Exit codes: 0 clean stop, 1 could not start (e.g. another daemon holds the state
directory), 78 config error (the message names the key).`;

/** Runs the daemon until a stop signal; resolves with the exit code. */
export async function runCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs('run', args, {
    help: COMMON_OPTIONS.help,
    config: COMMON_OPTIONS.config,
    socket: COMMON_OPTIONS.socket,
    'log-level': { type: 'string' },
  });
  if (values.help) {
    io.stdout.write(`${RUN_HELP}\n`);
    return EXIT.OK;
  }
  const level = values['log-level'];
  if (level !== undefined && !(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError('run', `--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${level}"`);
  }

  // Everything the daemon creates (database, lock, pid file) is private to its user.
  process.umask(0o077);
  let loaded;
  try {
    loaded = loadConfig(values.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.stderr.write(`wa-supervisor: ${err.message}\n`);
      return EX_CONFIG;
    }
    throw err;
  }
  const log = createLogger({ level: (level as (typeof LOG_LEVELS)[number] | undefined) ?? loaded.config.log.level });
  const notice = ignoredNotice({ chosen: { path: loaded.file, source: loaded.source, exists: true }, ignored: loaded.ignored });
  if (notice) log.warn(notice);

  // Signal handlers go in before the daemon starts: a stop requested during start-up (systemd
  // can send SIGTERM at any moment) waits for start to finish and then stops cleanly.
  let stopRequested: NodeJS.Signals | undefined;
  let onStopRequest: ((signal: NodeJS.Signals) => void) | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopRequested) {
      log.warn({ signal }, 'second stop signal; exiting now');
      process.exit(EXIT.FAILURE);
    }
    stopRequested = signal;
    const deadline = setTimeout(() => {
      log.error({ deadlineMs: STOP_DEADLINE_MS }, 'shutdown took too long; exiting');
      process.exit(EXIT.FAILURE);
    }, STOP_DEADLINE_MS);
    deadline.unref();
    onStopRequest?.(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const removeHandlers = () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };

  let daemon: Daemon;
  try {
    daemon = await Daemon.start({ loaded, socketFlag: values.socket, log });
  } catch (err) {
    removeHandlers();
    setTimeout(() => process.exit(EXIT.FAILURE), 100).unref(); // nothing may keep a failed start alive
    if (err instanceof StateDirLockedError || err instanceof SocketInUseError) {
      io.stderr.write(`wa-supervisor: ${err.message}\n`);
      return EXIT.FAILURE;
    }
    log.fatal({ err }, 'daemon failed to start');
    io.stderr.write(`wa-supervisor: could not start: ${(err as Error).message}\n`);
    return EXIT.FAILURE;
  }

  // SIGHUP re-reads the config; reloads never overlap.
  let reloading: Promise<unknown> = Promise.resolve();
  const onHup = () => {
    reloading = reloading.then(() => daemon.reload()).catch((err: unknown) => log.error({ err }, 'reload failed'));
  };
  process.on('SIGHUP', onHup);
  const signal = stopRequested ?? (await new Promise<NodeJS.Signals>((resolve) => (onStopRequest = resolve)));
  process.off('SIGHUP', onHup);
  let code: number = EXIT.OK;
  try {
    await daemon.stop(`received ${signal}`);
  } catch (err) {
    log.error({ err }, 'error during shutdown');
    code = EXIT.FAILURE;
  } finally {
    removeHandlers();
  }
  // Everything of ours is closed. Libraries may still hold timers (Baileys' caches do); they must
  // not keep a stopped daemon alive, so exit shortly if the event loop does not drain by itself.
  const handles = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.() ?? [];
  log.debug({ handles: handles.map((h) => (h as object)?.constructor?.name) }, 'handles left after stop');
  setTimeout(() => process.exit(code), 100).unref();
  return code;
}
