// The trust boundary between operators and clients, end to end: a real daemon with a client
// socket, two clients with tokens, and the emulator's peers as the truth of what was sent.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, ControlClient } from '../../src/control/client.js';
import { runCli } from '../helpers/cli-process.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { startWorld, type World } from '../helpers/world.js';

const A_PHONE = '15550001111';
const B_PHONE = '15550001112';
const PEER = '15550006000';
const HELD_PEER = '15550006001';
const BOT_TOKEN = 'wst_bot-token-for-the-roles-test-0123456789';
const READER_TOKEN = 'wst_reader-token-for-the-roles-test-0123456789';
const sha = (t: string) => createHash('sha256').update(t).digest('hex');

let world: World;
let sockDir: { dir: string; cleanup: () => void };
let clientSocket: string;
let bot: ControlClient;
let reader: ControlClient;

/** The status and error code a call answers, without throwing. */
async function answer(client: ControlClient, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; code?: string; message?: string }> {
  try {
    const r = await client.request(method, path, body, headers);
    return { status: r.status };
  } catch (err) {
    if (err instanceof ApiError) return { status: err.status, code: err.code, message: err.message };
    throw err;
  }
}

beforeAll(async () => {
  sockDir = makeTmpDir('wac-');
  clientSocket = join(sockDir.dir, 'c', 'clients.sock');
  world = await startWorld({
    config: (url) => ({
      clientSocket,
      clients: [
        { name: 'bot', tokenSha256: sha(BOT_TOKEN), accounts: ['a'] },
        { name: 'reader', tokenSha256: sha(READER_TOKEN), accounts: ['a'], may: ['read'] },
      ],
      policy: { default: 'allow', rules: [{ action: 'hold', name: 'four-eyes', match: { peer: HELD_PEER } }] },
      accounts: [
        { id: 'a', wsUrl: url },
        { id: 'b', wsUrl: url },
      ],
    }),
  });
  await world.pair('a', A_PHONE);
  await world.pair('b', B_PHONE);
  const socket = { path: clientSocket, source: 'flag' as const };
  bot = new ControlClient({ socket, token: BOT_TOKEN });
  reader = new ControlClient({ socket, token: READER_TOKEN });
}, 60_000);
afterAll(async () => {
  await world?.close();
  sockDir?.cleanup();
});

describe('client socket', () => {
  it('answers 401 without a token or with an unknown one', async () => {
    const anonymous = new ControlClient({ socket: { path: clientSocket, source: 'flag' } });
    expect(await answer(anonymous, 'GET', '/v1/inbox')).toMatchObject({ status: 401, code: 'unauthorized' });
    const wrong = new ControlClient({ socket: { path: clientSocket, source: 'flag' }, token: 'wst_not-a-listed-token' });
    expect(await answer(wrong, 'POST', '/v1/messages', { account: 'a', to: PEER, text: 'x' })).toMatchObject({ status: 401, code: 'unauthorized' });
  });

  it('refuses every operator route with 403 naming the operator role, and changes nothing', async () => {
    const operatorRoutes: Array<[string, string, unknown?]> = [
      ['GET', '/v1/status'],
      ['GET', '/v1/alerts'],
      ['GET', '/v1/accounts'],
      ['POST', '/v1/accounts', { id: 'mine' }],
      ['GET', '/v1/accounts/a'],
      ['DELETE', '/v1/accounts/a'],
      ['POST', '/v1/accounts/a/reconnect'],
      ['POST', '/v1/accounts/a/logout'],
      ['POST', '/v1/accounts/a/pair'],
      ['PUT', '/v1/accounts/a/policy', { allowTo: [PEER] }],
      ['POST', '/v1/config/check', {}],
      ['POST', '/v1/messages/1/retry'],
      ['POST', '/v1/messages/1/approve'],
      ['POST', '/v1/messages/1/reject'],
      ['POST', '/v1/messages/prune', { olderThan: '0d' }],
      ['POST', '/v1/inbox/prune', { olderThan: '0d' }],
      ['GET', '/v1/consumers'],
      ['POST', '/v1/consumers', { name: 'x', type: 'stream' }],
      ['GET', '/v1/consumers/x'],
      ['DELETE', '/v1/consumers/x'],
      ['GET', '/v1/consumers/x/dead-letters'],
    ];
    for (const [method, path, body] of operatorRoutes) {
      const r = await answer(bot, method, path, body);
      expect({ route: `${method} ${path}`, ...r }).toMatchObject({ status: 403, code: 'forbidden', message: expect.stringContaining('needs the operator role') });
    }
    // nothing happened: both accounts still there and open, no account "mine"
    const status = (await world.client.request<{ accounts: Array<{ id: string; state: string }> }>('GET', '/v1/status')).body.accounts;
    expect(status.map((a) => [a.id, a.state])).toEqual([
      ['a', 'open'],
      ['b', 'open'],
    ]);
  });

  it('sends from its account; another account is 403 and nothing of it reaches the peer', async () => {
    const sent = await bot.request<{ id: number; state: string }>('POST', '/v1/messages', { account: 'a', to: PEER, text: 'from the bot' });
    expect(sent.status).toBe(202);
    await world.waitEvent((e) => e.type === 'message.delivered' && e.id === sent.body.id);
    const fromB = await answer(bot, 'POST', '/v1/messages', { account: 'b', to: PEER, text: 'not my account' });
    expect(fromB).toMatchObject({ status: 403, code: 'forbidden', message: expect.stringContaining('may not use account "b"') });
    expect(world.emulator.peerMessages(PEER).map((m) => m.text)).toEqual(['from the bot']);
    // a read-only client may not send at all
    expect(await answer(reader, 'POST', '/v1/messages', { account: 'a', to: PEER, text: 'x' })).toMatchObject({ status: 403, message: expect.stringContaining('"send" permission') });
  });

  it('media: a client uploads bytes and sends them, but never names a file on the daemon\'s host; a reader cannot upload', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'wa-roles-media-'));
    const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n'), createHash('sha256').update('x').digest()]);
    writeFileSync(join(dir, 'a.pdf'), pdf);
    expect(await answer(bot, 'POST', '/v1/messages', { account: 'a', to: PEER, media: { path: join(dir, 'a.pdf') } })).toMatchObject({ status: 403, code: 'forbidden', message: expect.stringMatching(/^media\.path: a client cannot name a file/) });
    await expect(reader.uploadFile('/v1/media', join(dir, 'a.pdf'))).rejects.toMatchObject({ status: 403 });
    const up = (await bot.uploadFile<{ sha256: string }>('/v1/media', join(dir, 'a.pdf'))).body;
    const sent = (await bot.request<{ messageId: string }>('POST', '/v1/messages', { account: 'a', to: PEER, media: { sha256: up.sha256, fileName: 'a.pdf' } })).body;
    const got = await world.emulator.waitForDecrypted(PEER, (m) => m.id === sent.messageId);
    expect(got.media).toMatchObject({ kind: 'document', sha256: createHash('sha256').update(pdf).digest('hex'), error: null });
  });

  it('hold is four-eyes: the client that enqueued cannot approve; an operator can; the audit names the authenticated client', async () => {
    // the client's own X-WA-Client header claims to be someone else; the audit must not believe it
    const held = await bot.request<{ id: number; state: string }>('POST', '/v1/messages', { account: 'a', to: HELD_PEER, text: 'needs a second pair of eyes' }, { 'x-wa-client': 'the-operator' });
    expect(held.body.state).toBe('held');
    expect(await answer(bot, 'POST', `/v1/messages/${held.body.id}/approve`)).toMatchObject({ status: 403, code: 'forbidden' });
    expect(world.emulator.peerMessages(HELD_PEER)).toEqual([]);
    await world.client.request('POST', `/v1/messages/${held.body.id}/approve`);
    await world.waitEvent((e) => e.type === 'message.delivered' && e.id === held.body.id);
    expect(world.emulator.peerMessages(HELD_PEER).map((m) => m.text)).toEqual(['needs a second pair of eyes']);
    const audit = (await world.client.request<{ audit: Array<{ outboxId: number; stage: string; client: string | null; role: string | null }> }>('GET', '/v1/audit?limit=500')).body.audit;
    expect(audit.find((e) => e.outboxId === held.body.id && e.stage === 'enqueue')).toMatchObject({ client: 'bot', role: 'client' });
    expect(audit.find((e) => e.outboxId === held.body.id && e.stage === 'operator')).toMatchObject({ decision: 'approve', role: 'operator' });
    // the client's audit holds only its own decisions
    const own = (await bot.request<{ audit: Array<{ client: string | null }> }>('GET', '/v1/audit?limit=500')).body.audit;
    expect(own.length).toBeGreaterThan(0);
    expect(new Set(own.map((e) => e.client))).toEqual(new Set(['bot']));
  });

  it('reads only its accounts: messages, a message of another account, and cancelling what it did not enqueue', async () => {
    const other = (await world.client.request<{ id: number }>('POST', '/v1/messages', { account: 'b', to: PEER, text: 'operator on b' })).body;
    const mine = (await bot.request<{ messages: Array<{ account: string }> }>('GET', '/v1/messages?limit=1000')).body.messages;
    expect(mine.length).toBeGreaterThan(0);
    expect(new Set(mine.map((m) => m.account))).toEqual(new Set(['a']));
    expect(await answer(bot, 'GET', '/v1/messages?account=b')).toMatchObject({ status: 403 });
    // a row of another account is, to the client, a row that does not exist
    expect(await answer(bot, 'GET', `/v1/messages/${other.id}`)).toMatchObject({ status: 404, code: 'not_found' });
    expect(await answer(bot, 'GET', '/v1/inbox?account=b')).toMatchObject({ status: 403 });
    // what allowFrom refused stays the operator's
    expect(await answer(bot, 'GET', '/v1/inbox?status=ignored')).toMatchObject({ status: 403, message: expect.stringContaining('operator role') });
    expect(await answer(bot, 'GET', '/v1/inbox?status=all')).toMatchObject({ status: 403 });
    // an operator that labels itself "bot" is still an operator: the client can neither cancel
    // that row nor read its audit
    const opOnA = (await world.client.request<{ id: number }>('POST', '/v1/messages', { account: 'a', to: HELD_PEER, text: 'operator draft' }, { 'x-wa-client': 'bot' })).body;
    expect(await answer(bot, 'POST', `/v1/messages/${opOnA.id}/cancel`)).toMatchObject({ status: 403, message: expect.stringContaining('not enqueued by client "bot"') });
    const botAudit = (await bot.request<{ audit: Array<{ outboxId: number; role: string }> }>('GET', '/v1/audit?limit=500')).body.audit;
    expect(botAudit.filter((e) => e.outboxId === opOnA.id)).toEqual([]);
    expect(new Set(botAudit.map((e) => e.role))).toEqual(new Set(['client']));
    // its own row it may cancel
    const own = (await bot.request<{ id: number }>('POST', '/v1/messages', { account: 'a', to: HELD_PEER, text: 'my draft' })).body;
    expect((await bot.request<{ state: string }>('POST', `/v1/messages/${own.id}/cancel`)).body.state).toBe('cancelled');
    await world.client.request('POST', `/v1/messages/${opOnA.id}/reject`);
  });

  it('hears the events of its accounts only, and no alerts', async () => {
    const seen: Array<{ type: string; account?: string; id?: number }> = [];
    const abort = new AbortController();
    let opened!: () => void;
    const open = new Promise<void>((r) => (opened = r));
    let done!: () => void;
    const sawA = new Promise<void>((r) => (done = r));
    let target = -1;
    const reading = bot
      .stream(
        '/v1/events',
        (e) => {
          const ev = e as { type: string; account?: string; id?: number };
          seen.push(ev);
          if (ev.id === target && ev.type === 'message.delivered') done();
        },
        { signal: abort.signal, onOpen: () => opened() },
      )
      .catch(() => {});
    await open;
    const onB = (await world.client.request<{ id: number }>('POST', '/v1/messages', { account: 'b', to: PEER, text: 'b only' })).body;
    await world.waitEvent((e) => e.type === 'message.delivered' && e.id === onB.id);
    const onA = (await world.client.request<{ id: number }>('POST', '/v1/messages', { account: 'a', to: PEER, text: 'a too' })).body;
    target = onA.id;
    await sawA; // events reach a stream in order: any event of b would have come before this one
    abort.abort();
    await reading;
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.filter((e) => e.account !== 'a')).toEqual([]);
    expect(seen.filter((e) => e.type.startsWith('alert') || e.type === 'digest')).toEqual([]);
  });

  it('the CLI sends with WA_SUPERVISOR_TOKEN and exits 77 on an operator command', async () => {
    const env = { ...world.env, WA_SUPERVISOR_TOKEN: BOT_TOKEN };
    const sent = await runCli(['send', '--account', 'a', '--to', PEER, '--text', 'via the CLI', '--json', '--socket', clientSocket], env);
    expect(sent.code).toBe(0);
    const refused = await runCli(['accounts', 'list', '--socket', clientSocket], env);
    expect(refused.code).toBe(77);
    expect(refused.stderr).toContain('needs the operator role');
    const noToken = await runCli(['inbox', '--json', '--socket', clientSocket], world.env);
    expect(noToken.code).toBe(77);
  });

  it('the operator socket works as before, with no token', async () => {
    expect((await world.client.request('GET', '/v1/status')).status).toBe(200);
  });
});
