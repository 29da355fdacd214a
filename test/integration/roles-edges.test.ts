// The operator/client boundary at its edges, against the real daemon: shared idempotency keys,
// rows of other accounts, permissions inside the event stream, query parameters, a reload that
// takes accounts from a client while its streams are open.
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, ControlClient } from '../../src/control/client.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { FAST_CONFIG, startWorld, type World } from '../helpers/world.js';

const A_PHONE = '15550001111';
const B_PHONE = '15550001112';
const PEER = '15550006000';
const HELD_PEER = '15550006001';
const OTHER_PEER = '15550006002';
const SENDER_PEER = '15550006100';
const TOKENS = {
  bot: 'wst_edge-bot-token-0123456789abcdef',
  duo: 'wst_edge-duo-token-0123456789abcdef',
  sender: 'wst_edge-sender-token-0123456789abcd',
  watcher: 'wst_edge-watcher-token-0123456789ab',
  gone: 'wst_edge-gone-token-0123456789abcdef',
};
const sha = (t: string) => createHash('sha256').update(t).digest('hex');

let world: World;
let sockDir: { dir: string; cleanup: () => void };
let clientSocket: string;
const as: Record<keyof typeof TOKENS, ControlClient> = {} as never;

function clientsConfig(reloaded: boolean): unknown[] {
  return [
    { name: 'bot', tokenSha256: sha(TOKENS.bot), accounts: ['a'] },
    { name: 'duo', tokenSha256: sha(TOKENS.duo), accounts: reloaded ? ['a'] : ['a', 'b'] },
    { name: 'sender', tokenSha256: sha(TOKENS.sender), accounts: ['a'], may: ['send'] },
    { name: 'watcher', tokenSha256: sha(TOKENS.watcher), accounts: ['a'], may: ['events'] },
    ...(reloaded ? [] : [{ name: 'gone', tokenSha256: sha(TOKENS.gone), accounts: ['b'] }]),
  ];
}

function config(url: string, reloaded: boolean): Record<string, unknown> {
  return {
    clientSocket,
    clients: clientsConfig(reloaded),
    consumers: [{ name: 'cons-b', type: 'stream', accounts: ['b'] }],
    policy: { default: 'allow', rules: [{ action: 'hold', name: 'four-eyes', match: { peer: HELD_PEER } }] },
    accounts: [
      { id: 'a', wsUrl: url },
      { id: 'b', wsUrl: url },
    ],
  };
}

/** The status and error of a call, without throwing. */
async function answer<T = unknown>(client: ControlClient, method: string, path: string, body?: unknown): Promise<{ status: number; body?: T; code?: string; message?: string }> {
  try {
    const r = await client.request<T>(method, path, body);
    return { status: r.status, body: r.body };
  } catch (err) {
    if (err instanceof ApiError) return { status: err.status, code: err.code, message: err.message };
    throw err;
  }
}

type Line = Record<string, unknown>;
/** An open NDJSON stream: `until` resolves 'seen' on a matching line, 'closed' once the daemon ends the stream. */
interface Stream {
  lines: Line[];
  until(pred: (e: Line) => boolean): Promise<'seen' | 'closed'>;
  close(): void;
}

async function openStream(client: ControlClient, path: string): Promise<Stream> {
  const lines: Line[] = [];
  const waiters = new Set<() => void>();
  let closed = false;
  const abort = new AbortController();
  let opened!: () => void;
  const open = new Promise<void>((r) => (opened = r));
  const done = client
    .stream(
      path,
      (e) => {
        lines.push(e as Line);
        for (const w of [...waiters]) w();
      },
      { signal: abort.signal, onOpen: () => opened() },
    )
    .finally(() => {
      closed = true;
      for (const w of [...waiters]) w();
    });
  done.catch(() => {});
  await Promise.race([open, done]);
  return {
    lines,
    until: (pred) =>
      new Promise((resolve) => {
        const check = () => {
          if (lines.some(pred)) {
            waiters.delete(check);
            resolve('seen');
          } else if (closed) {
            waiters.delete(check);
            resolve('closed');
          }
        };
        waiters.add(check);
        check();
      }),
    close: () => abort.abort(),
  };
}

const op = () => world.client;
type Accepted = { id: number; messageId: string; state: string; client?: string | null };

beforeAll(async () => {
  sockDir = makeTmpDir('war-');
  clientSocket = join(sockDir.dir, 'c', 'clients.sock');
  world = await startWorld({ config: (url) => config(url, false) });
  await world.pair('a', A_PHONE);
  await world.pair('b', B_PHONE);
  const socket = { path: clientSocket, source: 'flag' as const };
  for (const k of Object.keys(TOKENS) as Array<keyof typeof TOKENS>) as[k] = new ControlClient({ socket, token: TOKENS[k] });
}, 60_000);
afterAll(async () => {
  await world?.close();
  sockDir?.cleanup();
});

describe('idempotency keys', () => {
  it('a client reusing another caller\'s key on a shared account does not get that row (nor its progress)', async () => {
    const opRow = (await op().request<Accepted>('POST', '/v1/messages', { account: 'a', to: HELD_PEER, text: 'operator draft', idempotencyKey: 'invoice-1001' })).body;
    expect(opRow.state).toBe('held');
    // "sender" may only send: it must learn nothing about rows it did not enqueue
    const r = await answer<Accepted>(as.sender, 'POST', '/v1/messages', { account: 'a', to: OTHER_PEER, text: 'probe', idempotencyKey: 'invoice-1001' });
    expect({ status: r.status, gotOperatorsRow: r.body?.id === opRow.id }).toMatchObject({ gotOperatorsRow: false });
  });

  it('a key a client used first does not swallow another caller\'s later send with the same key', async () => {
    const squat = (await as.bot.request<Accepted>('POST', '/v1/messages', { account: 'a', to: HELD_PEER, text: 'squatted', idempotencyKey: 'order-42' })).body;
    // another client of the same account, then the operator, use the key for a real message
    const duo = await answer<Accepted>(as.duo, 'POST', '/v1/messages', { account: 'a', to: PEER, text: 'duo real message', idempotencyKey: 'order-42' });
    const oper = await answer<Accepted>(op(), 'POST', '/v1/messages', { account: 'a', to: PEER, text: 'operator real message', idempotencyKey: 'order-42' });
    expect({ duoGotBotsRow: duo.body?.id === squat.id, operatorGotBotsRow: oper.body?.id === squat.id }).toEqual({ duoGotBotsRow: false, operatorGotBotsRow: false });
  });
});

describe('rows of another account', () => {
  it('GET and cancel of a row on an account not the client\'s answer like a row that does not exist, without naming that account', async () => {
    const onB = (await op().request<Accepted>('POST', '/v1/messages', { account: 'b', to: HELD_PEER, text: 'b only' })).body;
    const missing = await answer(as.bot, 'GET', '/v1/messages/999999999');
    const other = await answer(as.bot, 'GET', `/v1/messages/${onB.id}`);
    expect(other.status).not.toBe(200);
    expect(other.message).not.toContain('"b"');
    expect(other.status).toBe(missing.status);
    const cancel = await answer(as.bot, 'POST', `/v1/messages/${onB.id}/cancel`);
    expect(cancel.message).not.toContain('"b"');
    expect(cancel.status).toBe((await answer(as.bot, 'POST', '/v1/messages/999999999/cancel')).status);
    await op().request('POST', `/v1/messages/${onB.id}/reject`);
  });
});

describe('permissions', () => {
  it('a client with only "events" does not read the inbox through the event stream', async () => {
    const s = await openStream(as.watcher, '/v1/events');
    await world.emulator.sendInbound({ from: SENDER_PEER, to: A_PHONE, text: 'private inbound for a' });
    await world.waitEvent((e) => e.type === 'message.inbound' && e.text === 'private inbound for a');
    // an account event comes later on the same stream than the inbound would have
    const from = world.events.length;
    await op().request('POST', '/v1/accounts/a/reconnect');
    await world.waitState('a', 'open');
    await world.waitEvent((e) => e.type === 'account.state' && e.account === 'a' && e.state === 'open', { from });
    expect(await s.until((e) => e.type === 'account.state' && e.state === 'open')).toBe('seen');
    s.close();
    expect(JSON.stringify(s.lines)).not.toContain('private inbound for a');
  });

  it('a client cancelling its own row is not recorded as the operator', async () => {
    const own = (await as.bot.request<Accepted>('POST', '/v1/messages', { account: 'a', to: HELD_PEER, text: 'withdraw me' })).body;
    const cancelled = (await as.bot.request<{ state: string; reason: string }>('POST', `/v1/messages/${own.id}/cancel`)).body;
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.reason).not.toMatch(/operator/);
  });
});

describe('query parameters', () => {
  it('GET /v1/messages takes a comma list or repeated account like the other read routes', async () => {
    const comma = await answer<{ messages: Array<{ account: string }> }>(as.duo, 'GET', '/v1/messages?account=a,b&limit=1000');
    expect(comma.status).toBe(200);
    expect(new Set(comma.body!.messages.map((m) => m.account))).toEqual(new Set(['a', 'b']));
    const repeated = await answer<{ messages: Array<{ account: string }> }>(as.duo, 'GET', '/v1/messages?account=a&account=b&limit=1000');
    expect(new Set(repeated.body!.messages.map((m) => m.account))).toEqual(new Set(['a', 'b']));
  });

  it('a misspelt parameter is a 400 on POST /v1/messages and GET /v1/audit, as on the other routes', async () => {
    expect(await answer(as.bot, 'POST', '/v1/messages?wiat=read', { account: 'a', to: HELD_PEER, text: 'typo' })).toMatchObject({ status: 400 });
    expect(await answer(as.bot, 'GET', '/v1/audit?acount=a')).toMatchObject({ status: 400 });
  });

  it('holds: other accounts in lists, case, ignored statuses, operator routes with HEAD', async () => {
    expect(await answer(as.bot, 'GET', '/v1/inbox?account=a,b')).toMatchObject({ status: 403 });
    expect(await answer(as.bot, 'GET', '/v1/inbox?account=a&account=b')).toMatchObject({ status: 403 });
    expect(await answer(as.bot, 'GET', '/v1/inbox?account=A')).toMatchObject({ status: 403 });
    expect(await answer(as.bot, 'GET', '/v1/messages/changes?account=a,b')).toMatchObject({ status: 403 });
    expect(await answer(as.bot, 'GET', '/v1/inbox?status=ok,ignored')).toMatchObject({ status: 403 });
    expect(await answer(as.bot, 'GET', '/v1/events?account=b')).toMatchObject({ status: 403 });
    expect(await answer(as.bot, 'GET', '/v1/inbox/stream?consumer=cons-b')).toMatchObject({ status: 403 });
    expect(await answer(as.bot, 'POST', '/v1/inbox/ack', { consumer: 'cons-b', cursor: '0' })).toMatchObject({ status: 403 });
    expect(await answer(as.bot, 'POST', '/v1/chats/read', { account: 'b', chat: PEER })).toMatchObject({ status: 403 });
    expect(await answer(as.bot, 'GET', `/v1/audit?account=b`)).toMatchObject({ status: 403 });
    expect(await answer(as.bot, 'POST', '/v1/messages', { account: 'b', to: PEER, text: 'x' })).toMatchObject({ status: 403 });
    expect(await answer(as.sender, 'GET', '/v1/messages')).toMatchObject({ status: 403 });
    expect(await answer(as.watcher, 'POST', '/v1/chats/read', { account: 'a', chat: PEER })).toMatchObject({ status: 403 });
    const head = (path: string, token?: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request({ socketPath: clientSocket, method: 'HEAD', path, agent: false, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await head('/v1/status', TOKENS.bot)).toBe(403);
    expect(await head('/v1/alerts', TOKENS.bot)).toBe(403);
    expect(await head('/v1/inbox')).toBe(401);
    // several Authorization headers: the first counts, an unknown first one is 401
    const twoHeaders = await new Promise<number>((resolve, reject) => {
      const req = request({ socketPath: clientSocket, method: 'GET', path: '/v1/inbox', agent: false, headers: { authorization: ['Bearer wst_unknown', `Bearer ${TOKENS.bot}`] } as unknown as Record<string, string> }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(twoHeaders).toBe(401);
    // a client token on the operator socket is that client
    const onOperatorSocket = new ControlClient({ socket: { path: world.socket, source: 'flag' }, token: TOKENS.bot });
    expect(await answer(onOperatorSocket, 'GET', '/v1/status')).toMatchObject({ status: 403 });
  });
});

describe('runtime accounts (operator)', () => {
  it('PUT /v1/accounts/ID/policy with no body is a 400, not a silent removal of the account\'s allowTo', async () => {
    await op().request('POST', '/v1/accounts', { id: 'rt', wsUrl: world.emulator.url, allowTo: [PEER] });
    try {
      expect(await answer(op(), 'PUT', '/v1/accounts/rt/policy')).toMatchObject({ status: 400 });
    } finally {
      await op().request('DELETE', '/v1/accounts/rt');
    }
  });
});

describe('a reload that takes accounts from a client', () => {
  it('open streams stop delivering what the client lost, a removed token stops, and unscoped reads follow the new accounts', async () => {
    // before: duo has a and b; gone has b
    const duoEvents = await openStream(as.duo, '/v1/events');
    const duoFollow = await openStream(as.duo, '/v1/inbox/follow');
    const duoConsumer = await openStream(as.duo, '/v1/inbox/stream?consumer=cons-b');
    const goneEvents = await openStream(as.gone, '/v1/events');
    const before = (await as.duo.request<Accepted>('POST', '/v1/messages', { account: 'b', to: PEER, text: 'duo on b before the reload' })).body;
    await world.waitEvent((e) => e.type === 'message.delivered' && e.id === before.id);

    let from = world.events.length;
    writeFileSync(world.configFile, JSON.stringify({ stateDir: join(world.dir, 'state'), socket: world.socket, ...FAST_CONFIG, ...config(world.emulator.url, true) }));
    world.daemon.child.kill('SIGHUP');
    await world.waitEvent((e) => e.type === 'daemon.reloaded', { from });

    // new requests see the new config
    expect(await answer(as.gone, 'GET', '/v1/inbox')).toMatchObject({ status: 401 });
    expect(await answer(as.duo, 'GET', '/v1/messages?account=b')).toMatchObject({ status: 403 });

    // b moves: an operator's send and an inbound message
    from = world.events.length;
    const onB = (await op().request<Accepted>('POST', '/v1/messages', { account: 'b', to: PEER, text: 'operator on b after the reload' })).body;
    await world.waitEvent((e) => e.type === 'message.delivered' && e.id === onB.id, { from });
    await world.emulator.sendInbound({ from: SENDER_PEER, to: B_PHONE, text: 'inbound on b after the reload' });
    await world.waitEvent((e) => e.type === 'message.inbound' && e.text === 'inbound on b after the reload', { from });
    // then a moves (markers that come later on the same streams)
    const onA = (await op().request<Accepted>('POST', '/v1/messages', { account: 'a', to: PEER, text: 'marker on a' })).body;
    await world.emulator.sendInbound({ from: SENDER_PEER, to: A_PHONE, text: 'inbound marker on a' });
    await world.waitEvent((e) => e.type === 'message.inbound' && e.text === 'inbound marker on a', { from });

    await duoEvents.until((e) => e.id === onA.id);
    await duoFollow.until((e) => e.text === 'inbound marker on a');
    const consumerOutcome = await duoConsumer.until((e) => e.text === 'inbound on b after the reload');
    const goneOutcome = await goneEvents.until((e) => e.id === onB.id);
    for (const s of [duoEvents, duoFollow, duoConsumer, goneEvents]) s.close();

    const audit = (await as.duo.request<{ audit: Array<{ account: string }> }>('GET', '/v1/audit?limit=1000')).body.audit;
    expect({
      duoEventsOfB: duoEvents.lines.filter((e) => e.account === 'b' && e.id === onB.id).length,
      duoFollowOfB: duoFollow.lines.filter((e) => e.text === 'inbound on b after the reload').length,
      duoConsumerOfB: consumerOutcome,
      goneStillHears: goneOutcome,
      duoAuditOfB: audit.filter((e) => e.account === 'b').length,
    }).toEqual({ duoEventsOfB: 0, duoFollowOfB: 0, duoConsumerOfB: 'closed', goneStillHears: 'closed', duoAuditOfB: 0 });
  }, 60_000);
});
