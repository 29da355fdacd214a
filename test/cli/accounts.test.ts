// `accounts add|list|remove`, `reconnect`, `logout` through the real CLI against a running daemon.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isolatedEnv, runCli, startDaemon, type DaemonProcess } from '../helpers/cli-process.js';
import { tmpDirs, writeConfig } from '../helpers/tmp.js';

const tmp = tmpDirs(afterEach);
let daemon: DaemonProcess | undefined;
afterEach(async () => {
  daemon?.child.kill('SIGTERM');
  await daemon?.exited;
  daemon = undefined;
});

describe('account commands', () => {
  it('adds an account without a config edit, keeps it across restarts, and removes it', async () => {
    const dir = tmp();
    const file = writeConfig(dir, { stateDir: join(dir, 'state'), accounts: [{ id: 'fromconfig' }] });
    const env = isolatedEnv(dir);
    daemon = await startDaemon(['--config', file], env);
    const cli = (...args: string[]) => runCli([...args, '--config', file], env);

    const added = await cli('accounts', 'add', 'bot1', '--ws-url', 'ws://127.0.0.1:9/ws/chat', '--json');
    expect(added.code).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({ id: 'bot1', state: 'needs_pairing', origin: 'runtime', wsUrl: 'ws://127.0.0.1:9/ws/chat' });
    expect((await cli('accounts', 'add', 'bot1')).stderr).toContain('409 conflict: account "bot1" already exists');
    expect((await cli('accounts', 'add', 'bad id')).stderr).toContain('400 bad_request: id: expected 1-64 characters');
    expect((await cli('accounts', 'add', 'x', '--ws-url', 'http://nope')).stderr).toContain('wsUrl: expected a ws:// or wss:// URL');

    daemon.child.kill('SIGTERM');
    await daemon.exited;
    daemon = await startDaemon(['--config', file], env);
    const listed = JSON.parse((await cli('accounts', 'list', '--json')).stdout) as { accounts: Array<{ id: string; origin: string }> };
    expect(listed.accounts.map((a) => [a.id, a.origin])).toEqual([
      ['fromconfig', 'config'],
      ['bot1', 'runtime'],
    ]);

    const refused = await cli('accounts', 'remove', 'fromconfig');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('is defined in the config file; remove it there');
    expect((await cli('accounts', 'remove', 'bot1')).stdout).toBe('removed account bot1\n');
    expect((await cli('accounts', 'remove', 'bot1')).stderr).toContain('404 not_found');
  });

  it('logout and reconnect answer with the account; an unknown account is a 404', async () => {
    const dir = tmp();
    const file = writeConfig(dir, { stateDir: join(dir, 'state'), accounts: [{ id: 'main' }] });
    const env = isolatedEnv(dir);
    daemon = await startDaemon(['--config', file], env);
    const out = await runCli(['logout', 'main', '--config', file], env);
    expect(out).toMatchObject({ code: 0, stdout: 'main: needs_pairing\n' });
    const missing = await runCli(['reconnect', 'nope', '--config', file], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no account "nope"');
    const usage = await runCli(['reconnect', '--config', file], env);
    expect(usage.code).toBe(64);
  });
});
