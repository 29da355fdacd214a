// `wa-supervisor service print|install|uninstall|status`: the daemon as a systemd or launchd
// service, with absolute paths of this node binary and this package.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultConfigPath, LAUNCHD_LABEL, SYSTEMD_UNIT } from '../../platform/paths.js';
import { renderLaunchdPlist, renderSystemdUnit, type ServiceScope, type ServiceSpec } from '../../platform/service-files.js';
import { COMMON_OPTIONS, UsageError, parseCommandArgs } from '../args.js';
import { EXIT } from '../exit-codes.js';
import type { CliIo } from '../io.js';

/** Help text for `service`. */
export const SERVICE_HELP = `Usage: wa-supervisor service print [--platform linux|darwin] [--user|--system] [--config F] [--run-as USER]
       wa-supervisor service install [--user|--system] [--config F] [--run-as USER] [--dry-run]
       wa-supervisor service uninstall [--user|--system] [--dry-run]
       wa-supervisor service status [--user|--system]

print      shows the systemd unit (linux) or launchd plist (darwin) install would write; touches nothing
install    writes it with this node binary and this package's absolute paths, creates the
           directories, and enables and starts it (systemctl enable --now / launchctl bootstrap +
           kickstart). Installing again gives the same result.
uninstall  stops, disables and removes it
status     systemctl status / launchctl print

--user (default) runs as you; --system runs system-wide as its own user (--run-as, default
wa-supervisor; on Linux install creates it with useradd when missing), with the config readable
by that user but writable only by root, so bots and agents given the client socket cannot change
the rules (README: "Giving the socket to an agent"). A config error makes the daemon exit 78: systemd keeps retrying with
growing delays and "systemctl status" shows the key in the log lines; launchd retries once a minute.`;

const BIN = fileURLToPath(new URL('../../../bin/wa-supervisor.js', import.meta.url));

interface Target {
  platform: 'linux' | 'darwin';
  scope: ServiceScope;
  path: string;
  content: string;
}

/** The user a system service runs as unless --run-as says otherwise: its own, not whoever installed it. */
export const DEFAULT_SERVICE_USER = 'wa-supervisor';

function target(platform: 'linux' | 'darwin', scope: ServiceScope, config: string, runAsFlag?: string): Target {
  const runAs = scope === 'system' ? (runAsFlag ?? DEFAULT_SERVICE_USER) : undefined;
  const spec: ServiceSpec = { scope, node: process.execPath, bin: BIN, config, runAs };
  if (platform === 'linux') {
    const path = scope === 'system' ? `/etc/systemd/system/${SYSTEMD_UNIT}` : join(homedir(), '.config', 'systemd', 'user', SYSTEMD_UNIT);
    return { platform, scope, path, content: renderSystemdUnit(spec) };
  }
  const logDir = scope === 'system' ? '/var/log/wa-supervisor' : join(homedir(), 'Library', 'Logs', 'wa-supervisor');
  const path = scope === 'system' ? `/Library/LaunchDaemons/${LAUNCHD_LABEL}.plist` : join(homedir(), 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`);
  return { platform, scope, path, content: renderLaunchdPlist({ ...spec, logDir }) };
}

/** The commands that load and start the service, in order. */
function loadCommands(t: Target): string[][] {
  if (t.platform === 'linux') {
    const ctl = t.scope === 'user' ? ['systemctl', '--user'] : ['systemctl'];
    return [
      [...ctl, 'daemon-reload'],
      [...ctl, 'enable', '--now', SYSTEMD_UNIT],
      [...ctl, 'restart', SYSTEMD_UNIT],
    ];
  }
  const domain = t.scope === 'user' ? `gui/${process.getuid?.() ?? 0}` : 'system';
  return [
    ['launchctl', 'bootout', `${domain}/${LAUNCHD_LABEL}`], // a failure here only means "was not loaded"
    ['launchctl', 'bootstrap', domain, t.path],
    ['launchctl', 'kickstart', '-k', `${domain}/${LAUNCHD_LABEL}`],
  ];
}

function unloadCommands(t: Target): string[][] {
  if (t.platform === 'linux') {
    const ctl = t.scope === 'user' ? ['systemctl', '--user'] : ['systemctl'];
    return [[...ctl, 'disable', '--now', SYSTEMD_UNIT], [...ctl, 'daemon-reload']];
  }
  const domain = t.scope === 'user' ? `gui/${process.getuid?.() ?? 0}` : 'system';
  return [['launchctl', 'bootout', `${domain}/${LAUNCHD_LABEL}`]];
}

/** Dispatches the service subcommands. */
export async function serviceCommand(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.stdout.write(`${SERVICE_HELP}\n`);
    return sub === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const { values } = parseCommandArgs(`service ${sub}`, rest, {
    help: COMMON_OPTIONS.help,
    config: COMMON_OPTIONS.config,
    user: { type: 'boolean' },
    system: { type: 'boolean' },
    platform: { type: 'string' },
    'run-as': { type: 'string' },
    'dry-run': { type: 'boolean' },
  });
  if (values.help) {
    io.stdout.write(`${SERVICE_HELP}\n`);
    return EXIT.OK;
  }
  if (values.user && values.system) throw new UsageError(`service ${sub}`, 'choose one of --user and --system');
  const scope: ServiceScope = values.system ? 'system' : 'user';
  const here = process.platform === 'darwin' ? 'darwin' : 'linux';
  const platform = (values.platform ?? here) as 'linux' | 'darwin';
  if (platform !== 'linux' && platform !== 'darwin') throw new UsageError(`service ${sub}`, '--platform must be linux or darwin');
  if (sub !== 'print' && values.platform && platform !== here) throw new UsageError(`service ${sub}`, `--platform ${platform} only works with print on this machine`);
  const config = resolve(values.config ?? (scope === 'system' ? '/etc/wa-supervisor/config.json' : defaultConfigPath()));
  const runAsFlag = values['run-as'];
  if (runAsFlag !== undefined && scope !== 'system') throw new UsageError(`service ${sub}`, '--run-as applies to --system only (a user service runs as you)');
  if (runAsFlag !== undefined && !/^[a-z_][a-z0-9_-]{0,31}$/.test(runAsFlag)) throw new UsageError(`service ${sub}`, `--run-as: expected a user name, got ${JSON.stringify(runAsFlag)}`);
  const t = target(platform, scope, config, runAsFlag);
  const dry = values['dry-run'] === true;
  const run = (argv: string[], mayFail = false): boolean => {
    io.stdout.write(`$ ${argv.join(' ')}\n`);
    if (dry) return true;
    const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0 && !mayFail) {
      io.stderr.write(`wa-supervisor: ${argv.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})\n`);
      return false;
    }
    return true;
  };

  switch (sub) {
    case 'print':
      io.stdout.write(t.content);
      return EXIT.OK;
    case 'install': {
      if (!existsSync(config)) io.stderr.write(`wa-supervisor: warning: ${config} does not exist yet; the service will exit 78 until it does\n`);
      const same = existsSync(t.path) && readFileSync(t.path, 'utf8') === t.content;
      io.stdout.write(`${same ? 'unchanged' : 'writing'} ${t.path}\n`);
      if (!dry) {
        mkdirSync(dirname(t.path), { recursive: true });
        if (!same) writeFileSync(t.path, t.content, { mode: 0o644 });
        if (platform === 'darwin') mkdirSync(scope === 'system' ? '/var/log/wa-supervisor' : join(homedir(), 'Library', 'Logs', 'wa-supervisor'), { recursive: true });
      }
      if (platform === 'linux' && scope === 'system') {
        // The daemon's own user; the config owned by root and readable by that user only.
        const user = runAsFlag ?? DEFAULT_SERVICE_USER;
        const exists = dry ? false : spawnSync('id', ['-u', user], { stdio: 'ignore' }).status === 0;
        if (!exists && !run(['useradd', '--system', '--user-group', '--no-create-home', '--home-dir', '/var/lib/wa-supervisor', '--shell', '/usr/sbin/nologin', user])) return EXIT.FAILURE;
        if (!run(['install', '-d', '-o', 'root', '-g', user, '-m', '0750', dirname(config)])) return EXIT.FAILURE;
        if (existsSync(config) || dry) {
          if (!run(['chown', `root:${user}`, config]) || !run(['chmod', '0640', config])) return EXIT.FAILURE;
        }
      }
      for (const [i, argv] of loadCommands(t).entries()) if (!run(argv, platform === 'darwin' && i === 0)) return EXIT.FAILURE;
      return EXIT.OK;
    }
    case 'uninstall': {
      for (const argv of unloadCommands(t)) run(argv, true);
      io.stdout.write(`removing ${t.path}\n`);
      if (!dry) rmSync(t.path, { force: true });
      return EXIT.OK;
    }
    case 'status':
      return run(platform === 'linux' ? [...(scope === 'user' ? ['systemctl', '--user'] : ['systemctl']), 'status', SYSTEMD_UNIT] : ['launchctl', 'print', `${scope === 'user' ? `gui/${process.getuid?.() ?? 0}` : 'system'}/${LAUNCHD_LABEL}`], true)
        ? EXIT.OK
        : EXIT.FAILURE;
    default:
      throw new UsageError('service', `unknown service command "${sub}" (use print, install, uninstall or status)`);
  }
}
