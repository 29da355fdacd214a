import { describe, expect, it } from 'vitest';
import { HttpError } from '../../src/control/http-error.js';
import { authenticate, bearerToken, clientForToken, clientMaySee, operatorOnly, requireAccount, requirePermission, scopedAccounts, tokenSha256, type Caller } from '../../src/control/roles.js';
import { ConfigFileSchema } from '../../src/config/schema.js';
import { settingsProblems } from '../../src/config/account-settings.js';

const TOKEN = 'wst_unit-test-token';
const CLIENTS = [
  { name: 'bot', tokenSha256: tokenSha256(TOKEN), accounts: ['a'] },
  { name: 'reader', tokenSha256: tokenSha256('wst_reader'), accounts: ['a', 'b'], may: ['read' as const] },
];

function refusal(fn: () => unknown): { status: number; code: string; message: string } | null {
  try {
    fn();
    return null;
  } catch (err) {
    if (err instanceof HttpError) return { status: err.status, code: err.code, message: err.message };
    throw err;
  }
}

describe('recognising a caller', () => {
  it('no token: the operator on the operator socket, 401 on the client socket', () => {
    expect(authenticate(undefined, CLIENTS, 'operator')).toEqual({ role: 'operator' });
    expect(refusal(() => authenticate(undefined, CLIENTS, 'client'))).toMatchObject({ status: 401, code: 'unauthorized' });
  });

  it('a listed token is that client on either socket; an unknown or malformed one is 401', () => {
    for (const socket of ['operator', 'client'] as const) {
      const c = authenticate(`Bearer ${TOKEN}`, CLIENTS, socket);
      expect(c).toMatchObject({ role: 'client', name: 'bot' });
      expect(refusal(() => authenticate('Bearer wst_other', CLIENTS, socket))).toMatchObject({ status: 401 });
    }
    expect(bearerToken('Basic abc')).toBeNull();
    expect(bearerToken('Bearer  a b')).toBeNull();
    expect(clientForToken(TOKEN.toUpperCase(), CLIENTS)).toBeNull();
  });

  it('a client without may has all three permissions; with may only those', () => {
    const bot = clientForToken(TOKEN, CLIENTS) as Extract<Caller, { role: 'client' }>;
    expect([...bot.may]).toEqual(['send', 'read', 'events']);
    const reader = clientForToken('wst_reader', CLIENTS)!;
    expect(refusal(() => requirePermission(reader, 'send', 'POST /v1/messages'))).toMatchObject({ status: 403, message: expect.stringContaining('"send" permission') });
    expect(refusal(() => requirePermission(reader, 'read', 'GET /v1/inbox'))).toBeNull();
  });
});

describe('what a client may touch', () => {
  const bot = clientForToken(TOKEN, CLIENTS)!;
  const operator: Caller = { role: 'operator' };

  it('operator routes and other accounts are 403 with the role or the accounts named', () => {
    expect(refusal(() => operatorOnly(bot, 'POST /v1/messages/:id/approve'))).toMatchObject({ status: 403, code: 'forbidden', message: expect.stringContaining('needs the operator role') });
    expect(refusal(() => operatorOnly(operator, 'POST /v1/messages/:id/approve'))).toBeNull();
    expect(refusal(() => requireAccount(bot, 'b'))).toMatchObject({ status: 403, message: expect.stringContaining('its accounts: a') });
    expect(refusal(() => requireAccount(operator, 'b'))).toBeNull();
  });

  it('reads cover the client\'s accounts when none are asked for; asking for another is 403', () => {
    expect(scopedAccounts(bot, [])).toEqual(['a']);
    expect(scopedAccounts(operator, [])).toBeUndefined();
    expect(refusal(() => scopedAccounts(bot, ['a', 'b']))).toMatchObject({ status: 403 });
  });

  it('events: only its accounts, never alerts, digests or who allowFrom refused', () => {
    expect(clientMaySee(bot, { type: 'message.delivered', account: 'a' })).toBe(true);
    expect(clientMaySee(bot, { type: 'message.delivered', account: 'b' })).toBe(false);
    expect(clientMaySee(bot, { type: 'daemon.started' })).toBe(false);
    for (const type of ['alert', 'alert.recovered', 'digest', 'message.ignored']) expect(clientMaySee(bot, { type, account: 'a' })).toBe(false);
    expect(clientMaySee(operator, { type: 'alert', account: 'b' })).toBe(true);
  });

  it('group events: its accounts only, and only with "read" (who is in a chat is chat content)', () => {
    for (const type of ['group.participants', 'group.updated']) {
      expect(clientMaySee(bot, { type, account: 'a' })).toBe(true);
      expect(clientMaySee(bot, { type, account: 'b' })).toBe(false);
    }
    const eventsOnly: Caller = { ...(bot as Extract<Caller, { role: 'client' }>), may: new Set(['events']) };
    expect(clientMaySee(eventsOnly, { type: 'group.participants', account: 'a' })).toBe(false);
    expect(clientMaySee(eventsOnly, { type: 'account.state', account: 'a' })).toBe(true);
  });
});

describe('config', () => {
  const base = { accounts: [{ id: 'a' }] };
  it('clients need a hex SHA-256, an account and known permissions, unique names and tokens', () => {
    const bad = ConfigFileSchema.safeParse({
      ...base,
      clientSocket: '/tmp/c.sock',
      clients: [
        { name: 'bot', tokenSha256: 'not-a-hash', accounts: ['a'] },
        { name: 'bot', tokenSha256: 'a'.repeat(64), accounts: [] },
        { name: 'x', tokenSha256: 'a'.repeat(64), accounts: ['a'], may: ['approve'] },
      ],
    });
    expect(bad.success).toBe(false);
    const paths = bad.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['clients.0.tokenSha256', 'clients.1.accounts', 'clients.2.may.0']));
    const twice = ConfigFileSchema.safeParse({
      ...base,
      clientSocket: '/tmp/c.sock',
      clients: [
        { name: 'bot', tokenSha256: 'a'.repeat(64), accounts: ['a'] },
        { name: 'bot', tokenSha256: 'b'.repeat(64), accounts: ['a'] },
        { name: 'other', tokenSha256: 'a'.repeat(64), accounts: ['a'] },
      ],
    });
    expect(twice.error!.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['clients.1.name', 'duplicate client name "bot" (already used by clients[0])'],
      ['clients.2.tokenSha256', `duplicate token "${'a'.repeat(64)}" (already used by clients[0])`],
    ]);
  });

  it('clients without a clientSocket are a config problem naming the key', () => {
    const cfg = ConfigFileSchema.parse({ ...base, clients: [{ name: 'bot', tokenSha256: 'b'.repeat(64), accounts: ['a'] }] });
    expect(settingsProblems(cfg).map((p) => p.path)).toContain('clientSocket');
  });
});
