// The service definitions: a systemd unit (user or system) and a launchd plist (agent or daemon),
// rendered from absolute paths. The files in the repository's systemd/ and launchd/ folders are
// these functions' output for the example paths below (a test keeps them equal).
import { APP_NAME, LAUNCHD_LABEL } from './paths.js';

/** Where the service is installed: for the current user, or system-wide. */
export type ServiceScope = 'user' | 'system';

/** What a service file needs to know. */
export interface ServiceSpec {
  scope: ServiceScope;
  /** Absolute path of the node binary. */
  node: string;
  /** Absolute path of bin/wa-supervisor.js. */
  bin: string;
  /** Absolute path of the config file. */
  config: string;
  /** The account a system service runs as (launchd UserName, systemd User=). */
  runAs?: string | undefined;
  /** launchd only: the folder for stdout/stderr logs. */
  logDir?: string | undefined;
}

/** The example paths the documented files use. */
export const EXAMPLE_SPEC = {
  node: '/usr/local/bin/node',
  bin: '/opt/wa-supervisor/bin/wa-supervisor.js',
} as const;

/** Seconds systemd/launchd wait for a stop; the daemon's own hard deadline is 9 s. */
export const STOP_TIMEOUT_S = 15;

/** A systemd unit. Restart=on-failure with growing delays; a config error (exit 78) is restarted too, slowly, so the unit never stays down silently. */
export function renderSystemdUnit(spec: ServiceSpec): string {
  const system = spec.scope === 'system';
  const lines = [
    `# ${APP_NAME} as a systemd ${system ? 'system' : 'user'} service.`,
    `# Installed by: wa-supervisor service install --${spec.scope} --config ${spec.config}`,
    '[Unit]',
    'Description=wa-supervisor: WhatsApp connection supervisor',
    'After=network-online.target',
    'Wants=network-online.target',
    // Never give up: a unit that stops restarting is the "silently down" failure of other systems.
    'StartLimitIntervalSec=0',
    '',
    '[Service]',
    'Type=exec',
    `ExecStart=${spec.node} ${spec.bin} run --config ${spec.config}`,
    'ExecReload=/bin/kill -HUP $MAINPID',
    'Restart=on-failure',
    'RestartSec=2',
    // Growing delays, 2 s up to 5 min (systemd 254+; older versions warn and keep RestartSec).
    'RestartSteps=10',
    'RestartMaxDelaySec=300',
    `TimeoutStopSec=${STOP_TIMEOUT_S}`,
    'KillSignal=SIGTERM',
    'StateDirectory=wa-supervisor',
    'StateDirectoryMode=0700',
    // The second runtime directory holds the client socket (clientSocket); the daemon opens it to
    // other users (0755) when it listens there, the first stays the daemon's alone.
    system ? 'RuntimeDirectory=wa-supervisor wa-supervisor-clients' : 'RuntimeDirectory=wa-supervisor',
    'RuntimeDirectoryMode=0700',
    'UMask=0077',
    'NoNewPrivileges=yes',
    'LockPersonality=yes',
    'RestrictRealtime=yes',
    'RestrictSUIDSGID=yes',
    'SystemCallArchitectures=native',
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6',
    // No MemoryDenyWriteExecute: V8's JIT needs writable, executable pages.
    ...(system
      ? [
          ...(spec.runAs ? [`User=${spec.runAs}`] : []),
          'ProtectSystem=strict',
          'ProtectHome=read-only',
          'PrivateTmp=yes',
          'PrivateDevices=yes',
          'ProtectKernelTunables=yes',
          'ProtectKernelModules=yes',
          'ProtectKernelLogs=yes',
          'ProtectControlGroups=yes',
          'ProtectClock=yes',
          'ProtectHostname=yes',
          'RestrictNamespaces=yes',
        ]
      : []),
    '',
    '[Install]',
    `WantedBy=${system ? 'multi-user.target' : 'default.target'}`,
    '',
  ];
  return lines.join('\n');
}

function xml(v: string): string {
  return v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A launchd plist: KeepAlive only after a failed exit, throttled to one start a minute (launchd has no backoff). */
export function renderLaunchdPlist(spec: ServiceSpec): string {
  const system = spec.scope === 'system';
  const logDir = spec.logDir ?? (system ? '/var/log/wa-supervisor' : '~/Library/Logs/wa-supervisor');
  const args = [spec.node, spec.bin, 'run', '--config', spec.config];
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    // No "--" inside an XML comment: it would make the plist invalid.
    `<!-- ${APP_NAME} as a launchd ${system ? 'daemon (system)' : 'agent (per user)'}, written by "wa-supervisor service install" -->`,
    '<plist version="1.0">',
    '<dict>',
    '  <key>Label</key>',
    `  <string>${LAUNCHD_LABEL}</string>`,
    '  <key>ProgramArguments</key>',
    '  <array>',
    ...args.map((a) => `    <string>${xml(a)}</string>`),
    '  </array>',
    ...(system && spec.runAs ? ['  <key>UserName</key>', `  <string>${xml(spec.runAs)}</string>`] : []),
    '  <key>RunAtLoad</key>',
    '  <true/>',
    '  <key>KeepAlive</key>',
    '  <dict>',
    '    <key>SuccessfulExit</key>',
    '    <false/>',
    '  </dict>',
    // A config error exits 78 and is retried once a minute, not every 10 s.
    '  <key>ThrottleInterval</key>',
    '  <integer>60</integer>',
    '  <key>ExitTimeOut</key>',
    `  <integer>${STOP_TIMEOUT_S}</integer>`,
    '  <key>ProcessType</key>',
    '  <string>Background</string>',
    '  <key>Umask</key>',
    '  <integer>63</integer>',
    '  <key>StandardOutPath</key>',
    `  <string>${xml(logDir)}/wa-supervisor.log</string>`,
    '  <key>StandardErrorPath</key>',
    `  <string>${xml(logDir)}/wa-supervisor.err.log</string>`,
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
}
