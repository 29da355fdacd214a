// `config check` / `config show` as a user runs them: the real binary, exact messages and exit codes.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isolatedEnv, runCli } from '../helpers/cli-process.js';
import { tmpDirs, writeConfig } from '../helpers/tmp.js';

const tmp = tmpDirs(afterEach);

describe('wa-supervisor config check', () => {
  it('accepts a valid file with exit 0', async () => {
    const dir = tmp();
    const file = writeConfig(dir, { accounts: [{ id: 'main' }] });
    const r = await runCli(['config', 'check', '--config', file], isolatedEnv(dir));
    expect(r).toMatchObject({ code: 0, stdout: `config OK: ${file} (1 account(s))\n`, stderr: '' });
  });

  it('names an unknown key and exits 78', async () => {
    const dir = tmp();
    const file = writeConfig(dir, { accounts: [], sockt: '/x' });
    const r = await runCli(['config', 'check', '--config', file], isolatedEnv(dir));
    expect(r.code).toBe(78);
    expect(r.stderr).toBe(`wa-supervisor: config error in ${file}:\n  sockt: unknown key (did you mean "socket"?)\n`);
  });

  it('names a wrong type with the expected and the found value', async () => {
    const dir = tmp();
    const file = writeConfig(dir, { accounts: [{ id: 'a', wsUrl: 42 }] });
    const r = await runCli(['config', 'check', '--config', file], isolatedEnv(dir));
    expect(r.code).toBe(78);
    expect(r.stderr).toBe(`wa-supervisor: config error in ${file}:\n  accounts[0].wsUrl: expected string, got number 42\n`);
  });

  it('prints the problems as JSON with --json', async () => {
    const dir = tmp();
    const file = writeConfig(dir, { log: { level: 'loud' } });
    const r = await runCli(['config', 'check', '--config', file, '--json'], isolatedEnv(dir));
    expect(r.code).toBe(78);
    expect(JSON.parse(r.stdout)).toEqual({
      ok: false,
      file,
      problems: [{ path: 'log.level', message: 'expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "loud"' }],
    });
  });

  it('reports a missing file with exit 78', async () => {
    const dir = tmp();
    const r = await runCli(['config', 'check', '--config', join(dir, 'missing.json')], isolatedEnv(dir));
    expect(r.code).toBe(78);
    expect(r.stderr).toBe(`wa-supervisor: config error in ${join(dir, 'missing.json')}: file not found (from --config)\n`);
  });

  it('reports that no config exists anywhere, naming where it looked', async () => {
    const dir = tmp();
    const r = await runCli(['config', 'check'], isolatedEnv(dir));
    expect(r.code).toBe(78);
    expect(r.stderr).toBe(
      `wa-supervisor: config error: no config file found (looked for ${dir}/.config/wa-supervisor/config.json (platform default)); ` +
        'pass --config FILE or set WA_SUPERVISOR_CONFIG\n',
    );
  });

  it('with two candidate files, uses the env one and says the default is ignored', async () => {
    const dir = tmp();
    mkdirSync(join(dir, '.config', 'wa-supervisor'), { recursive: true });
    const def = writeConfig(join(dir, '.config', 'wa-supervisor'), { accounts: [{ id: 'old' }] });
    const chosen = writeConfig(dir, { accounts: [{ id: 'new' }, { id: 'two' }] }, 'chosen.json');
    const r = await runCli(['config', 'check'], isolatedEnv(dir, { WA_SUPERVISOR_CONFIG: chosen }));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`config OK: ${chosen} (2 account(s))\n`);
    expect(r.stderr).toBe(`wa-supervisor: using config ${chosen} (from WA_SUPERVISOR_CONFIG); ignoring ${def} (platform default)\n`);
  });
});

describe('wa-supervisor config show', () => {
  it('prints the effective config with defaults, absolute paths and the file it came from', async () => {
    const dir = tmp();
    const file = writeConfig(dir, { stateDir: 'st', accounts: [{ id: 'main', wsUrl: 'ws://127.0.0.1:9/ws/chat' }] });
    const r = await runCli(['config', 'show', '--config', file, '--json'], isolatedEnv(dir));
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      file,
      source: 'flag',
      ignored: [],
      socketSource: 'default',
      config: {
        stateDir: join(dir, 'st'),
        socket: join(dir, 'st', 'wa-supervisor.sock'),
        log: { level: 'info' },
        operators: [],
        policy: { default: 'allow', rules: [] },
        store: { type: 'sqlite' },
        consumers: [],
        accounts: [{ id: 'main', wsUrl: 'ws://127.0.0.1:9/ws/chat' }],
        clients: [],
      },
    });
    const human = await runCli(['config', 'show', '--config', file], isolatedEnv(dir));
    expect(human.stdout.split('\n')[0]).toBe(`# config file: ${file} (from --config)`);
  });

  it('shows a PostgreSQL store with the password in its URL redacted, in both outputs', async () => {
    const dir = tmp();
    const file = writeConfig(dir, { stateDir: 'st', store: { type: 'postgres', url: 'postgres://wa:s3cret-pw@db.internal:5432/wa', leaseTtlMs: 8000 } });
    const json = await runCli(['config', 'show', '--config', file, '--json'], isolatedEnv(dir));
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout).config.store).toEqual({ type: 'postgres', url: 'postgres://wa:[redacted]@db.internal:5432/wa', leaseTtlMs: 8000 });
    const human = await runCli(['config', 'show', '--config', file], isolatedEnv(dir));
    expect(human.stdout).toContain('postgres://wa:[redacted]@db.internal:5432/wa');
    expect(json.stdout + human.stdout).not.toContain('s3cret-pw');
  });

  it('refuses a store that is not sqlite or postgres, and a postgres store without a postgres:// URL', async () => {
    const dir = tmp();
    for (const store of [{ type: 'mysql' }, { type: 'postgres', url: 'http://db/wa' }, { type: 'postgres' }]) {
      const file = writeConfig(dir, { stateDir: 'st', store });
      const r = await runCli(['config', 'show', '--config', file, '--json'], isolatedEnv(dir));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/store/);
    }
  });

  it('puts the socket under XDG_RUNTIME_DIR when that is set', async () => {
    const dir = tmp();
    const file = writeConfig(dir, {});
    const r = await runCli(['config', 'show', '--config', file, '--json'], isolatedEnv(dir, { XDG_RUNTIME_DIR: join(dir, 'run') }));
    expect(JSON.parse(r.stdout).config.socket).toBe(join(dir, 'run', 'wa-supervisor', 'wa-supervisor.sock'));
  });
});

describe('command line errors', () => {
  it('rejects an unknown flag with exit 64 and a pointer to --help', async () => {
    const dir = tmp();
    const r = await runCli(['status', '--jsn'], isolatedEnv(dir));
    expect(r.code).toBe(64);
    expect(r.stderr).toBe(`wa-supervisor status: Unknown option '--jsn'\nRun "wa-supervisor status --help" for usage.\n`);
  });

  it('rejects an unknown command with exit 64', async () => {
    const r = await runCli(['frobnicate'], isolatedEnv(tmp()));
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });

  it.each(['run', 'status', 'config'])('%s --help prints usage and exits 0', async (cmd) => {
    const r = await runCli([cmd, '--help'], isolatedEnv(tmp()));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: wa-supervisor /);
  });
});

describe('wa-supervisor run with a bad config', () => {
  it('exits 78 naming the key, before touching the state directory', async () => {
    const dir = tmp();
    const file = writeConfig(dir, { stateDir: join(dir, 'state'), accounts: [{ id: 'a', wsurl: 'ws://x' }] });
    const r = await runCli(['run', '--config', file], isolatedEnv(dir));
    expect(r.code).toBe(78);
    expect(r.stderr).toBe(`wa-supervisor: config error in ${file}:\n  accounts[0].wsurl: unknown key (did you mean "wsUrl"?)\n`);
    expect(existsSync(join(dir, 'state'))).toBe(false);
  });
});
