// The daemon as users run it: a child process, driven through the real CLI and the real socket.
import { existsSync, lstatSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isolatedEnv, runCli, startDaemon, type DaemonProcess } from '../helpers/cli-process.js';
import { openStream } from '../helpers/http-unix.js';
import { makeTmpDir, writeConfig } from '../helpers/tmp.js';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function setup(config: Record<string, unknown> = {}) {
  const t = makeTmpDir();
  cleanups.push(t.cleanup);
  const stateDir = join(t.dir, 'state');
  const file = writeConfig(t.dir, { stateDir, accounts: [{ id: 'main' }, { id: 'second' }], ...config });
  return { dir: t.dir, stateDir, file, socket: join(stateDir, 'wa-supervisor.sock'), env: isolatedEnv(t.dir) };
}

function track(d: DaemonProcess): DaemonProcess {
  cleanups.push(async () => {
    if (d.child.exitCode === null && d.child.signalCode === null) {
      d.child.kill('SIGKILL');
      await d.exited;
    }
  });
  return d;
}

describe('daemon process', () => {
  it('creates a 0700 state directory and a 0600 socket, and answers status over it', async () => {
    const s = setup();
    const d = track(await startDaemon(['--config', s.file], s.env));
    expect(statSync(s.stateDir).mode & 0o777).toBe(0o700);
    expect(lstatSync(s.socket).isSocket()).toBe(true);
    expect(lstatSync(s.socket).mode & 0o777).toBe(0o600);
    expect(statSync(join(s.stateDir, 'state.db')).mode & 0o777).toBe(0o600);

    const r = await runCli(['status', '--json', '--config', s.file], s.env);
    expect(r.code).toBe(0);
    const status = JSON.parse(r.stdout);
    expect(status.daemon).toMatchObject({ pid: d.pid, configPath: s.file, stateDir: s.stateDir, socket: s.socket, previousRunCrashed: false });
    expect(status.accounts.map((a: { id: string; state: string }) => [a.id, a.state])).toEqual([
      ['main', 'needs_pairing'],
      ['second', 'needs_pairing'],
    ]);
    expect(status.cli).toMatchObject({ configPath: s.file, socket: s.socket, configMatchesDaemon: true });

    const human = await runCli(['status', '--config', s.file], s.env);
    expect(human.stdout).toContain(`config    ${s.file}\n`);
    expect(human.stdout).toMatch(/^main\s+needs_pairing\s+\d+s ago/m);
  });

  it('refuses a second daemon on the same state directory, naming the first one', async () => {
    const s = setup();
    const first = track(await startDaemon(['--config', s.file], s.env));
    // Another socket path, so it is the state-directory lock that refuses, not the socket check.
    const r = await runCli(['run', '--config', s.file, '--socket', join(s.dir, 'other.sock')], s.env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`another wa-supervisor daemon (pid ${first.pid}) is using the state directory ${s.stateDir}`);
    expect((await runCli(['status', '--json', '--config', s.file], s.env)).code).toBe(0);
  });

  it('refuses to start on a socket another daemon answers on', async () => {
    const a = setup();
    track(await startDaemon(['--config', a.file], a.env));
    const b = setup();
    const r = await runCli(['run', '--config', b.file, '--socket', a.socket], b.env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`another daemon is already listening on ${a.socket}`);
  });

  it('exits 0 on SIGTERM, ending event streams and removing the socket', async () => {
    const s = setup();
    const d = track(await startDaemon(['--config', s.file], s.env));
    const events = await openStream(s.socket, '/v1/events?type=daemon.*');
    const started = Date.now();
    d.child.kill('SIGTERM');
    expect(await events.next()).toMatchObject({ type: 'daemon.stopping', reason: 'received SIGTERM' });
    expect(await d.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(existsSync(s.socket)).toBe(false);
    expect(d.output()).toContain('"msg":"stopped"');
  });

  it('after kill -9, the next start removes the stale socket and reports the crash', async () => {
    const s = setup();
    const d = track(await startDaemon(['--config', s.file], s.env));
    d.child.kill('SIGKILL');
    await d.exited;
    expect(lstatSync(s.socket).isSocket()).toBe(true); // left behind

    const again = track(await startDaemon(['--config', s.file], s.env));
    await again.waitForLog((l) => l.msg === 'removed a stale socket file left by an earlier run');
    const status = JSON.parse((await runCli(['status', '--json', '--config', s.file], s.env)).stdout);
    expect(status.daemon).toMatchObject({ pid: again.pid, previousRunCrashed: true });
    const alerts = JSON.parse((await runCli(['alerts', '--json', '--config', s.file], s.env)).stdout) as { recent: Array<{ alert: { code: string; text: string } }> };
    expect(alerts.recent.map((n) => n.alert.code)).toContain('daemon_crashed');
  });

  it('SIGINT stops it the same way', async () => {
    const s = setup();
    const d = track(await startDaemon(['--config', s.file], s.env));
    d.child.kill('SIGINT');
    expect(await d.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(s.socket)).toBe(false);
  });
});

describe('CLI against no daemon or another config', () => {
  it('turns "cannot connect" into a hint with the socket path, exit 69', async () => {
    const s = setup();
    const r = await runCli(['status', '--config', s.file], s.env);
    expect(r.code).toBe(69);
    expect(r.stderr).toContain(`cannot reach the wa-supervisor daemon at ${s.socket} (no socket file there).`);
    expect(r.stderr).toContain('daemon not running? start it in the foreground with: wa-supervisor run --config FILE');
    expect(r.stderr).toMatch(/systemctl --user status wa-supervisor|launchctl print/);
  });

  it('shows when the daemon runs with another config file than the CLI would use', async () => {
    const s = setup();
    track(await startDaemon(['--config', s.file], s.env));
    const other = writeConfig(s.dir, { stateDir: s.stateDir }, 'other.json');
    const r = await runCli(['status', '--config', other], s.env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`config    ${s.file}\n          ! this CLI would use ${other}; the daemon runs with the file above`);
    const json = JSON.parse((await runCli(['status', '--json', '--config', other], s.env)).stdout);
    expect(json.cli).toMatchObject({ configPath: other, configMatchesDaemon: false });
  });

  it('finds the daemon through WA_SUPERVISOR_SOCKET', async () => {
    const s = setup({ socket: 'ctl/d.sock' });
    const d = track(await startDaemon(['--config', s.file], s.env));
    const r = await runCli(['status', '--json'], { ...s.env, WA_SUPERVISOR_SOCKET: join(s.dir, 'ctl', 'd.sock') });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).daemon.pid).toBe(d.pid);
  });
});
