// The service files: the documented ones are exactly what `service print` renders, the systemd
// units pass systemd-analyze verify, and the plists parse with the keys launchd needs.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import plist from 'plist';
import { afterEach, describe, expect, it } from 'vitest';
import { DOCUMENTED_SERVICES } from '../../src/platform/documented-services.js';
import { renderLaunchdPlist, renderSystemdUnit } from '../../src/platform/service-files.js';
import { BIN, isolatedEnv, runCli } from '../helpers/cli-process.js';
import { tmpDirs } from '../helpers/tmp.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const tmp = tmpDirs(afterEach);

describe('documented service files', () => {
  it.each(DOCUMENTED_SERVICES.map((d) => [d.file, d] as const))('%s is what the renderer writes', (_f, d) => {
    const rendered = d.kind === 'systemd' ? renderSystemdUnit(d.spec) : renderLaunchdPlist(d.spec);
    expect(readFileSync(join(ROOT, d.file), 'utf8')).toBe(rendered);
  });
});

describe('systemd units', () => {
  it.each(['user', 'system'] as const)('the %s unit passes systemd-analyze verify', (scope) => {
    const dir = join(tmp(), scope);
    mkdirSync(dir);
    const file = join(dir, 'wa-supervisor.service');
    writeFileSync(file, renderSystemdUnit({ scope, node: process.execPath, bin: BIN, config: '/etc/wa-supervisor/config.json', runAs: 'root' }));
    const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    expect(r.error, 'systemd-analyze must be installed (.ci/run installs Debian\'s systemd package)').toBeUndefined();
    expect(r.status).toBe(0);
    // Only the growing-delay keys of systemd 254+ may be unknown to an older systemd.
    const warnings = r.stderr.split('\n').filter((l) => l.trim() !== '');
    for (const w of warnings) expect(w).toMatch(/Unknown key '(RestartSteps|RestartMaxDelaySec)'/);
  });

  it('restarts on failure with growing delays, never gives up, and stops within the daemon deadline', () => {
    const unit = renderSystemdUnit({ scope: 'system', node: '/n', bin: '/b', config: '/c', runAs: 'wa' });
    for (const line of ['Restart=on-failure', 'RestartSteps=10', 'RestartMaxDelaySec=300', 'StartLimitIntervalSec=0', 'TimeoutStopSec=15', 'User=wa', 'ProtectSystem=strict', 'NoNewPrivileges=yes', 'StateDirectory=wa-supervisor', 'RuntimeDirectory=wa-supervisor wa-supervisor-clients', 'UMask=0077', 'PrivateTmp=yes', 'ExecReload=/bin/kill -HUP $MAINPID']) {
      expect(unit.split('\n')).toContain(line);
    }
    expect(unit).not.toContain('MemoryDenyWriteExecute');
    expect(unit).not.toContain('RestartPreventExitStatus');
  });
});

describe('launchd plists', () => {
  it.each(['user', 'system'] as const)('the %s plist parses and holds the keys launchd needs', (scope) => {
    const parsed = plist.parse(renderLaunchdPlist({ scope, node: '/n', bin: '/b', config: '/c & d', runAs: 'wa', logDir: '/logs' })) as Record<string, unknown>;
    expect(parsed).toMatchObject({
      Label: 'com.wa-supervisor.daemon',
      ProgramArguments: ['/n', '/b', 'run', '--config', '/c & d'],
      RunAtLoad: true,
      KeepAlive: { SuccessfulExit: false },
      ThrottleInterval: 60,
      ExitTimeOut: 15,
      StandardOutPath: '/logs/wa-supervisor.log',
      StandardErrorPath: '/logs/wa-supervisor.err.log',
    });
    if (scope === 'system') expect(parsed.UserName).toBe('wa');
    else expect(parsed.UserName).toBeUndefined();
  });
});

describe('wa-supervisor service', () => {
  it.each([
    ['linux', '--user'],
    ['linux', '--system'],
    ['darwin', '--user'],
    ['darwin', '--system'],
  ])('print --platform %s %s shows the file install would write', async (platform, scope) => {
    const r = await runCli(['service', 'print', '--platform', platform, scope, '--config', '/etc/wa/config.json'], isolatedEnv(tmp()));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${process.execPath} ${BIN}`.split(' ')[0]);
    expect(r.stdout).toContain('/etc/wa/config.json');
    expect(r.stdout.startsWith(platform === 'linux' ? '# wa-supervisor as a systemd' : '<?xml')).toBe(true);
  });

  it('install --dry-run names the file and the commands, and touches nothing', async () => {
    const home = tmp();
    const r = await runCli(['service', 'install', '--dry-run', '--config', join(home, 'c.json')], isolatedEnv(home));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^writing .*(wa-supervisor\.service|com\.wa-supervisor\.daemon\.plist)\n/);
    expect(r.stdout).toMatch(/\$ (systemctl --user enable --now wa-supervisor\.service|launchctl bootstrap)/);
    expect(r.stderr).toContain('does not exist yet; the service will exit 78 until it does');
  });

  it('install --system runs the daemon as its own user, not the one installing, with the config root-owned and only readable by it', async () => {
    const home = tmp();
    const env = { ...isolatedEnv(home), SUDO_USER: 'alice' };
    const unit = await runCli(['service', 'print', '--platform', 'linux', '--system'], env);
    expect(unit.stdout.split('\n')).toContain('User=wa-supervisor');
    expect(unit.stdout).not.toContain('User=alice');
    expect((await runCli(['service', 'print', '--platform', 'linux', '--system', '--run-as', 'wa-bot-gw'], env)).stdout.split('\n')).toContain('User=wa-bot-gw');
    expect((await runCli(['service', 'print', '--user', '--run-as', 'x'], env)).code).toBe(64);
    if (process.platform !== 'linux') return;
    const r = await runCli(['service', 'install', '--system', '--dry-run', '--config', '/etc/wa-supervisor/config.json'], env);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines).toContain('$ useradd --system --user-group --no-create-home --home-dir /var/lib/wa-supervisor --shell /usr/sbin/nologin wa-supervisor');
    expect(lines).toContain('$ install -d -o root -g wa-supervisor -m 0750 /etc/wa-supervisor');
    expect(lines).toContain('$ chown root:wa-supervisor /etc/wa-supervisor/config.json');
    expect(lines).toContain('$ chmod 0640 /etc/wa-supervisor/config.json');
    // the user and the config's owner come before the service starts
    expect(lines.findIndex((l) => l.includes('chmod 0640'))).toBeLessThan(lines.findIndex((l) => l.includes('enable --now')));
  });
});
