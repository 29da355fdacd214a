import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { ignoredNotice, loadConfig, locateConfig, parseConfigText, redactSecrets } from '../../src/config/load.js';
import type { PlatformEnv } from '../../src/platform/paths.js';
import { makeTmpDir } from '../helpers/tmp.js';

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

function platformIn(home: string, env: NodeJS.ProcessEnv = {}): PlatformEnv {
  return { platform: 'linux', home, env };
}

function problemsOf(text: string, p: PlatformEnv = platformIn('/home/u')): Array<{ path: string; message: string }> {
  try {
    parseConfigText(text, '/etc/wa/config.json', p);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).problems];
  }
  throw new Error('expected a ConfigError');
}

describe('parseConfigText', () => {
  it('fills defaults and makes relative paths absolute against the file directory', () => {
    const cfg = parseConfigText('{"stateDir":"state","socket":"~/s.sock"}', '/etc/wa/config.json', platformIn('/home/u'));
    expect(cfg.stateDir).toBe('/etc/wa/state');
    expect(cfg.socket).toBe('/home/u/s.sock');
    expect(cfg.log.level).toBe('info');
    expect(cfg.accounts).toEqual([]);
  });

  it('defaults stateDir to the XDG state dir, or systemd StateDirectory when set', () => {
    expect(parseConfigText('{}', '/c.json', platformIn('/home/u')).stateDir).toBe('/home/u/.local/state/wa-supervisor');
    expect(parseConfigText('{}', '/c.json', platformIn('/home/u', { STATE_DIRECTORY: '/var/lib/wa-supervisor' })).stateDir).toBe(
      '/var/lib/wa-supervisor',
    );
  });

  it.each([
    ['unknown top-level key, with a suggestion', '{"acounts": []}', [{ path: 'acounts', message: 'unknown key (did you mean "accounts"?)' }]],
    [
      'unknown nested key, listing the known ones',
      '{"accounts": [{"id": "a", "colour": 1}]}',
      [{ path: 'accounts[0].colour', message: 'unknown key (known keys here: id, wsUrl, keepalive, reconnect, allowTo, allowFrom, pacing)' }],
    ],
    ['wrong type', '{"stateDir": 3}', [{ path: 'stateDir', message: 'expected string, got number 3' }]],
    ['webhook consumer without its secret', '{"consumers": [{"name": "h", "type": "webhook", "url": "http://127.0.0.1:9/x"}]}', [{ path: 'consumers[0].secret', message: 'required (expected string)' }]],
    [
      'duplicate consumer name',
      '{"consumers": [{"name": "bot", "type": "stream"}, {"name": "bot", "type": "stream"}]}',
      [{ path: 'consumers[1].name', message: 'duplicate consumer name "bot" (already used by consumers[0])' }],
    ],
    ['stream consumer with a url', '{"consumers": [{"name": "bot", "type": "stream", "url": "http://x"}]}', [{ path: 'consumers[0].url', message: 'unknown key' }]],
    ['allowFrom entry that is no number', '{"accounts": [{"id": "a", "allowFrom": ["hello"]}]}', [{ path: 'accounts[0].allowFrom[0]', message: 'expected an international phone number (7-15 digits) or a JID, got "hello"' }]],
    ['missing required key', '{"accounts": [{}]}', [{ path: 'accounts[0].id', message: 'required (expected string)' }]],
    [
      'bad enum value',
      '{"log": {"level": "verbose"}}',
      [{ path: 'log.level', message: 'expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "verbose"' }],
    ],
    [
      'bad url',
      '{"accounts": [{"id": "a", "wsUrl": "http://x"}]}',
      [{ path: 'accounts[0].wsUrl', message: 'expected a ws:// or wss:// URL, got "http://x"' }],
    ],
    [
      'duplicate account id',
      '{"accounts": [{"id": "a"}, {"id": "a"}]}',
      [{ path: 'accounts[1].id', message: 'duplicate account id "a" (already used by accounts[0])' }],
    ],
    ['top level not an object', '[1]', [{ path: '', message: 'expected a JSON object at the top level, got an array' }]],
    ['syntax error with line and column', '{\n  "a": 1,,\n}', [{ path: '', message: 'not valid JSON: Expected double-quoted property name at line 2 column 10' }]],
  ])('%s', (_name, text, expected) => {
    expect(problemsOf(text)).toEqual(expected);
  });

  it('rejects a keepalive that is not comfortably inside the idle window, globally and per account', () => {
    expect(problemsOf('{"keepalive": {"intervalMs": 400000}}')).toEqual([
      {
        path: 'keepalive.intervalMs',
        message: 'keepalive every 400000 ms is not comfortably inside the 900000 ms idle window; use at most 300000 ms (a third of it)',
      },
    ]);
    expect(problemsOf('{"keepalive": {"idleWindowMs": 3000}, "accounts": [{"id": "a", "keepalive": {"intervalMs": 1000, "probeDeadlineMs": 1000}}]}')).toEqual([
      { path: 'keepalive.intervalMs', message: 'keepalive every 10000 ms is not comfortably inside the 3000 ms idle window; use at most 1000 ms (a third of it)' },
      { path: 'accounts[0].keepalive.probeDeadlineMs', message: 'the probe deadline (1000 ms) must be shorter than the keepalive interval (1000 ms)' },
    ]);
  });

  it('accepts keepalive 0 (off) and checks backoff bounds', () => {
    expect(parseConfigText('{"keepalive": {"intervalMs": 0}}', '/c.json', platformIn('/h')).keepalive).toEqual({ intervalMs: 0 });
    expect(problemsOf('{"reconnect": {"initialMs": 5000, "maxMs": 1000}}')).toEqual([
      { path: 'reconnect.initialMs', message: 'initialMs (5000) is larger than maxMs (1000)' },
    ]);
    expect(problemsOf('{"reconnect": {"maxConcurrent": 0}}')).toEqual([{ path: 'reconnect.maxConcurrent', message: 'expected 1 or more, got number 0' }]);
  });

  it('names bad alert config by key: unknown sink type, operator not listed, bad cron, unknown account, short secret', () => {
    expect(
      problemsOf(
        JSON.stringify({
          operators: ['+15550009999'],
          accounts: [{ id: 'main' }],
          alerts: { sinks: [{ type: 'pager' }, { type: 'webhook', url: 'https://h/x', secret: 'short' }], digest: 'every day' },
        }),
      ),
    ).toEqual([
      { path: 'alerts.sinks[0].type', message: 'unknown value "pager"; expected one of "webhook", "command", "whatsapp"' },
      { path: 'alerts.sinks[1].secret', message: 'expected a secret of at least 16 characters' },
      { path: 'alerts.digest', message: 'expected a cron expression, e.g. "0 8 * * *", got "every day"' },
    ]);
    expect(
      problemsOf(
        JSON.stringify({
          operators: ['+15550009999'],
          accounts: [{ id: 'main' }],
          alerts: { sinks: [{ type: 'whatsapp', account: 'main', to: ['15550001234', '+1 555 000 9999'] }, { type: 'whatsapp', account: 'nope', to: ['15550009999'] }] },
        }),
      ),
    ).toEqual([
      { path: 'alerts.sinks[0].to[0]', message: '15550001234 is not listed in operators; alerts go only to operators' },
      { path: 'alerts.sinks[1].account', message: 'no account "nope" in accounts[] (an operator chat needs a configured account)' },
    ]);
  });

  it('reports every problem at once, not just the first', () => {
    expect(problemsOf('{"stateDir": 1, "x": 2, "log": {"level": 3}}').map((p) => p.path)).toEqual(['stateDir', 'log.level', 'x']);
  });

  it('formats the error with the file and one line per key', () => {
    try {
      parseConfigText('{"stateDir": 1, "x": 2}', '/etc/wa/config.json', platformIn('/h'));
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toBe(
        'config error in /etc/wa/config.json:\n  stateDir: expected string, got number 1\n  x: unknown key (known keys here: stateDir, socket, log, keepalive, reconnect, whatsappVersion, connectTimeoutMs, flap, operators, policy, pacing, alerts, outbox, inbox, metrics, eventLoop, media, store, consumers, accounts, clientSocket, clients)',
      );
    }
  });
});

describe('locateConfig and loadConfig', () => {
  it('uses --config over the environment over the platform default, and names the ignored ones', () => {
    const { dir, cleanup } = makeTmpDir();
    cleanups.push(cleanup);
    const flag = join(dir, 'flag.json');
    const fromEnv = join(dir, 'env.json');
    const def = join(dir, 'xdg', 'wa-supervisor', 'config.json');
    mkdirSync(join(dir, 'xdg', 'wa-supervisor'), { recursive: true });
    for (const f of [flag, fromEnv, def]) writeFileSync(f, '{}');
    const p = platformIn(dir, { XDG_CONFIG_HOME: join(dir, 'xdg'), WA_SUPERVISOR_CONFIG: fromEnv });

    const loc = locateConfig(flag, p);
    expect(loc.chosen?.path).toBe(flag);
    expect(loc.ignored.map((c) => c.path)).toEqual([fromEnv, def]);
    expect(ignoredNotice(loc)).toBe(
      `using config ${flag} (from --config); ignoring ${fromEnv} (from WA_SUPERVISOR_CONFIG), ${def} (platform default)`,
    );
    expect(locateConfig(undefined, p).chosen?.path).toBe(fromEnv);
    expect(locateConfig(undefined, platformIn(dir, { XDG_CONFIG_HOME: join(dir, 'xdg') })).chosen).toMatchObject({
      path: def,
      source: 'default',
    });
  });

  it('names a missing explicit file instead of falling back to another one', () => {
    const { dir, cleanup } = makeTmpDir();
    cleanups.push(cleanup);
    mkdirSync(join(dir, '.config', 'wa-supervisor'), { recursive: true });
    writeFileSync(join(dir, '.config', 'wa-supervisor', 'config.json'), '{}');
    expect(() => loadConfig(join(dir, 'nope.json'), platformIn(dir))).toThrow(
      `config error in ${join(dir, 'nope.json')}: file not found (from --config)`,
    );
  });

  it('uses the platform default on macOS', () => {
    const loc = locateConfig(undefined, { platform: 'darwin', home: '/Users/u', env: {} });
    expect(loc.candidates[0]!.path).toBe('/Users/u/Library/Application Support/wa-supervisor/config.json');
  });
});

describe('redactSecrets', () => {
  it('blanks values under secret-looking keys at any depth', () => {
    expect(redactSecrets({ a: 1, sinks: [{ url: 'u', secret: 's' }], nested: { apiToken: 't' } })).toEqual({
      a: 1,
      sinks: [{ url: 'u', secret: '[redacted]' }],
      nested: { apiToken: '[redacted]' },
    });
  });
});
