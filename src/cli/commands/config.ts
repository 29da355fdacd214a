// `wa-supervisor config check|show`: validate the config file, or print the effective config.
import { ConfigError, EX_CONFIG } from '../../config/errors.js';
import { describeConfigSource, ignoredNotice, loadConfig, redactSecrets } from '../../config/load.js';
import { describeSource, resolveSocketPath } from '../../platform/paths.js';
import { COMMON_OPTIONS, UsageError, parseCommandArgs } from '../args.js';
import { EXIT } from '../exit-codes.js';
import { printJson, type CliIo } from '../io.js';

/** Help text for `config`. */
export const CONFIG_HELP = `Usage: wa-supervisor config check [--config FILE] [--json]
       wa-supervisor config show  [--config FILE] [--socket PATH] [--json]

check  validates the config file: exit 0 when valid, 78 with every problem named by
       its key path (e.g. accounts[0].wsUrl) when not.
show   prints the effective config (defaults filled in, paths made absolute, secrets
       redacted) and the file it came from.

The file is --config FILE, else $WA_SUPERVISOR_CONFIG, else the platform default.
When more than one of these exists, the one used and the ones ignored are named.`;

/** Dispatches `config check` and `config show`. */
export async function configCommand(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    io.stdout.write(`${CONFIG_HELP}\n`);
    return sub === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (sub !== 'check' && sub !== 'show') throw new UsageError('config', `unknown config command "${sub}" (use check or show)`);
  const { values } = parseCommandArgs(`config ${sub}`, rest, {
    help: COMMON_OPTIONS.help,
    config: COMMON_OPTIONS.config,
    json: COMMON_OPTIONS.json,
    ...(sub === 'show' ? { socket: COMMON_OPTIONS.socket } : {}),
  });
  if (values.help) {
    io.stdout.write(`${CONFIG_HELP}\n`);
    return EXIT.OK;
  }

  let loaded;
  try {
    loaded = loadConfig(values.config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    if (values.json) printJson(io, { ok: false, file: err.file, problems: err.problems });
    io.stderr.write(`wa-supervisor: ${err.message}\n`);
    return EX_CONFIG;
  }
  const notice = ignoredNotice({ chosen: { path: loaded.file, source: loaded.source, exists: true }, ignored: loaded.ignored });
  if (notice) io.stderr.write(`wa-supervisor: ${notice}\n`);

  if (sub === 'check') {
    if (values.json) printJson(io, { ok: true, file: loaded.file, problems: [] });
    else io.stdout.write(`config OK: ${loaded.file} (${loaded.config.accounts.length} account(s))\n`);
    return EXIT.OK;
  }

  const socket = resolveSocketPath({
    flag: values.socket as string | undefined,
    configSocket: loaded.config.socket,
    stateDir: loaded.config.stateDir,
  });
  const effective = redactSecrets({ ...loaded.config, socket: socket.path });
  if (values.json) {
    printJson(io, {
      file: loaded.file,
      source: loaded.source,
      ignored: loaded.ignored.map((c) => ({ path: c.path, source: c.source })),
      socketSource: socket.source,
      config: effective,
    });
  } else {
    io.stdout.write(`# config file: ${loaded.file} (${describeConfigSource(loaded.source)})\n`);
    io.stdout.write(`# socket: ${describeSource(socket.source)}\n`);
    io.stdout.write(`${JSON.stringify(effective, null, 2)}\n`);
  }
  return EXIT.OK;
}
