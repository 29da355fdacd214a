import { describe, expect, it } from 'vitest';
import {
  assertSocketPathFits,
  defaultConfigPath,
  defaultSocketPath,
  defaultStateDir,
  resolveSocketPath,
  type PlatformEnv,
} from '../../src/platform/paths.js';

const linux = (env: NodeJS.ProcessEnv = {}): PlatformEnv => ({ platform: 'linux', home: '/home/u', env });
const mac = (env: NodeJS.ProcessEnv = {}): PlatformEnv => ({ platform: 'darwin', home: '/Users/u', env });

describe('default paths', () => {
  it.each([
    ['linux', linux(), '/home/u/.config/wa-supervisor/config.json', '/home/u/.local/state/wa-supervisor'],
    ['linux with XDG', linux({ XDG_CONFIG_HOME: '/x/cfg', XDG_STATE_HOME: '/x/st' }), '/x/cfg/wa-supervisor/config.json', '/x/st/wa-supervisor'],
    ['macOS', mac(), '/Users/u/Library/Application Support/wa-supervisor/config.json', '/Users/u/Library/Application Support/wa-supervisor'],
  ])('%s', (_name, p, config, state) => {
    expect(defaultConfigPath(p)).toBe(config);
    expect(defaultStateDir(p)).toBe(state);
  });

  it('puts the socket in systemd RuntimeDirectory, else XDG_RUNTIME_DIR, else the state dir', () => {
    expect(defaultSocketPath('/s', linux({ RUNTIME_DIRECTORY: '/run/wa-supervisor', XDG_RUNTIME_DIR: '/run/user/1' }))).toBe(
      '/run/wa-supervisor/wa-supervisor.sock',
    );
    expect(defaultSocketPath('/s', linux({ XDG_RUNTIME_DIR: '/run/user/1' }))).toBe('/run/user/1/wa-supervisor/wa-supervisor.sock');
    expect(defaultSocketPath('/s', linux())).toBe('/s/wa-supervisor.sock');
    expect(defaultSocketPath('/s', mac({ XDG_RUNTIME_DIR: '/ignored' }))).toBe('/s/wa-supervisor.sock');
  });

  it('resolves the socket from flag, then env, then config, then default', () => {
    const p = linux({ WA_SUPERVISOR_SOCKET: '/env.sock' });
    expect(resolveSocketPath({ flag: '/flag.sock', configSocket: '/cfg.sock', stateDir: '/s', platform: p })).toEqual({
      path: '/flag.sock',
      source: 'flag',
    });
    expect(resolveSocketPath({ configSocket: '/cfg.sock', stateDir: '/s', platform: p })).toEqual({ path: '/env.sock', source: 'env' });
    expect(resolveSocketPath({ configSocket: '/cfg.sock', stateDir: '/s', platform: linux() })).toEqual({ path: '/cfg.sock', source: 'config' });
    expect(resolveSocketPath({ stateDir: '/s', platform: linux() })).toEqual({ path: '/s/wa-supervisor.sock', source: 'default' });
  });

  it('accepts a 103-byte socket path and rejects 104 bytes, naming the path', () => {
    const fits = `/${'a'.repeat(102)}`;
    expect(() => assertSocketPathFits(fits)).not.toThrow();
    expect(() => assertSocketPathFits(`${fits}b`)).toThrow(`socket path is 104 bytes, longer than the 103 a unix socket allows: ${fits}b`);
  });
});
