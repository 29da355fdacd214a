// The MCP server against a fake daemon: the tools it offers, the requests each one makes, and how
// every kind of failure reads to a model (one line, no path, no stack).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { ApiError, ControlClient, DaemonUnreachableError } from '../../src/control/client.js';
import { StartRefused, requireClient } from '../../src/mcp/client-identity.js';
import { CallTimeoutError, controlPort, withDeadline, type DaemonPort } from '../../src/mcp/daemon-port.js';
import { silentDaemon } from '../helpers/http-unix.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { buildMcpServer } from '../../src/mcp/server.js';

type Call = { method: string; path: string; body?: unknown };
type Answer = (call: Call) => Promise<{ status: number; body: unknown }>;

/** A daemon that records each request and answers with `answer`. */
function fakeDaemon(answer: Answer): DaemonPort & { calls: Call[]; signals: Array<AbortSignal | undefined> } {
  const calls: Call[] = [];
  const signals: Array<AbortSignal | undefined> = [];
  return {
    calls,
    signals,
    request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal) {
      const call = { method, path, ...(body === undefined ? {} : { body }) };
      calls.push(call);
      signals.push(signal);
      return answer(call) as Promise<{ status: number; body: T }>;
    },
  };
}

const IDENTITY = { name: 'agent', accounts: ['sales'], may: ['send', 'read', 'events'] };
const SOCKET_PATH = '/var/lib/wa-supervisor/secret-dir/d.sock';
const open: Client[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});

async function connect(daemon: DaemonPort, opts: { defaultConsumer?: string; timeoutMs?: number; log?: (l: string) => void } = {}): Promise<Client> {
  const server = buildMcpServer({ daemon, identity: IDENTITY, ...opts });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(a);
  const client = new Client({ name: 'test', version: '0' });
  await client.connect(b);
  open.push(client);
  return client;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<{ text: string; isError: boolean; structured: unknown }> {
  const r = (await client.callTool({ name, arguments: args })) as { content: Array<{ type: string; text: string }>; isError?: boolean; structuredContent?: unknown };
  return { text: r.content.map((c) => c.text).join('\n'), isError: r.isError === true, structured: r.structuredContent };
}

describe('the tools', () => {
  it('are the five client tools, each with a strict input schema', async () => {
    const client = await connect(fakeDaemon(async () => ({ status: 200, body: {} })));
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['acknowledge', 'list_accounts', 'message_status', 'read_inbox', 'send_message']);
    for (const t of tools) {
      expect(t.inputSchema.additionalProperties, t.name).toBe(false);
      expect(t.description, t.name).toBeTruthy();
    }
    expect(tools.find((t) => t.name === 'send_message')!.inputSchema.required).toEqual(['account', 'to']);
  });

  it('send_message posts exactly account, to and text; a forged field is refused before the daemon is asked', async () => {
    const daemon = fakeDaemon(async () => ({ status: 202, body: { id: 7, messageId: 'ABC', state: 'queued' } }));
    const client = await connect(daemon);
    const sent = await call(client, 'send_message', { account: 'sales', to: '+15550001234', text: 'hi' });
    expect(sent.isError).toBe(false);
    expect(sent.structured).toMatchObject({ id: 7, messageId: 'ABC', state: 'queued' });
    expect(JSON.parse(sent.text)).toMatchObject({ id: 7, state: 'queued' });
    expect(daemon.calls).toEqual([{ method: 'POST', path: '/v1/messages', body: { account: 'sales', to: '+15550001234', text: 'hi' } }]);
    const forged = await call(client, 'send_message', { account: 'sales', to: '+15550001234', text: 'hi', kind: 'receipt' });
    expect(forged.isError).toBe(true);
    expect(forged.text).toMatch(/kind/);
    expect(daemon.calls).toHaveLength(1);
  });

  it('send_message takes the other kinds with the API\'s own checks, and a file only as bytes, never a path on the daemon\'s host', async () => {
    const daemon = fakeDaemon(async () => ({ status: 202, body: { id: 8, messageId: 'DEF', state: 'queued' } }));
    const client = await connect(daemon);
    const reaction = await call(client, 'send_message', { account: 'sales', to: '+15550001234', reaction: { messageId: 'ABCD1234', emoji: '👍' } });
    expect(reaction.isError).toBe(false);
    const location = await call(client, 'send_message', { account: 'sales', to: '+15550001234', location: { latitude: 52.37, longitude: 4.89, name: 'Dam' } });
    expect(location.isError).toBe(false);
    expect(daemon.calls.map((c) => c.body)).toEqual([
      { account: 'sales', to: '+15550001234', reaction: { messageId: 'ABCD1234', emoji: '👍' } },
      { account: 'sales', to: '+15550001234', location: { latitude: 52.37, longitude: 4.89, name: 'Dam' } },
    ]);
    for (const bad of [
      { media: { path: '/etc/passwd' } },
      { media: { sha256: 'a'.repeat(64) } },
      { media: { base64: 'aGk=', path: '/etc/passwd' } },
      { reaction: { messageId: 'ABCD1234', emoji: 'not one emoji' } },
      { location: { latitude: 91, longitude: 0 } },
      { contact: { name: 'Ann', phone: '+15550001111', vcard: 'BEGIN:VCARD' } },
    ]) {
      const r = await call(client, 'send_message', { account: 'sales', to: '+15550001234', ...bad });
      expect(r.isError, JSON.stringify(bad)).toBe(true);
    }
    expect(daemon.calls).toHaveLength(2);
    // A retry after a timeout can name the message it means: the key goes to the daemon as given.
    await call(client, 'send_message', { account: 'sales', to: '+15550001234', text: 'once', idempotencyKey: 'order-1042-shipped' });
    expect(daemon.calls.at(-1)?.body).toEqual({ account: 'sales', to: '+15550001234', text: 'once', idempotencyKey: 'order-1042-shipped' });
  });

  it('read_inbox reads by cursor, or a consumer (the default one when none is named); acknowledge commits', async () => {
    const daemon = fakeDaemon(async (c) =>
      c.path.startsWith('/v1/inbox/next')
        ? { status: 200, body: { consumer: 'bot', committed: '3', messages: [{ cursor: '4' }], next: '4' } }
        : c.path.startsWith('/v1/inbox/ack')
          ? { status: 200, body: { consumer: 'bot', cursor: '4' } }
          : { status: 200, body: { messages: [{ cursor: '9' }], next: '9' } },
    );
    const plain = await connect(daemon);
    expect((await call(plain, 'read_inbox', { account: 'sales', after: '5', limit: 2 })).structured).toMatchObject({ messages: [{ cursor: '9' }], next: '9' });
    expect((await call(plain, 'read_inbox', { consumer: 'bot' })).structured).toMatchObject({ consumer: 'bot', committed: '3', next: '4' });
    expect((await call(plain, 'acknowledge', { cursor: '4' })).text).toMatch(/^invalid: consumer: required/);
    const withDefault = await connect(daemon, { defaultConsumer: 'bot' });
    await call(withDefault, 'read_inbox', {});
    expect((await call(withDefault, 'read_inbox', { after: '1' })).text).toMatch(/^invalid: after does not apply to a read of consumer "bot"/);
    expect((await call(withDefault, 'acknowledge', { cursor: 4 })).structured).toEqual({ consumer: 'bot', committed: '4' });
    expect(daemon.calls).toEqual([
      { method: 'GET', path: '/v1/inbox?account=sales&after=5&limit=2' },
      { method: 'GET', path: '/v1/inbox/next?consumer=bot&limit=20' },
      { method: 'GET', path: '/v1/inbox/next?consumer=bot&limit=20' },
      { method: 'POST', path: '/v1/inbox/ack', body: { consumer: 'bot', cursor: '4' } },
    ]);
  });
});

describe('what a model reads when a call fails', () => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['a 403', () => new ApiError(403, 'forbidden', 'client "agent" may not use account "other" (its accounts: sales); other accounts need the operator role'), /^forbidden: client "agent" may not use account "other"/],
    ['a 400', () => new ApiError(400, 'bad_request', 'to: expected a phone number or a JID'), /^invalid: to: expected a phone number or a JID$/],
    ['a 404', () => new ApiError(404, 'not_found', 'no message 12'), /^not found: no message 12$/],
    ['a 500', () => new ApiError(500, 'internal', 'internal error; the daemon log has the details'), /^daemon error: internal error/],
    ['an unreachable daemon', () => new DaemonUnreachableError({ path: SOCKET_PATH, source: 'flag' }, 'ENOENT'), /^unreachable: the wa-supervisor daemon is not answering on its socket$/],
    ['a reset connection', () => Object.assign(new Error(`read ECONNRESET ${SOCKET_PATH}`), { code: 'ECONNRESET' }), /^unreachable: the connection to the wa-supervisor daemon broke before it answered \(ECONNRESET\)$/],
    ['a bug', () => new TypeError(`cannot read properties of undefined at ${SOCKET_PATH}`), /^failed: an internal error in the MCP server/],
  ];
  for (const [what, error, wording] of cases) {
    it(`${what}: one line, no path, no stack`, async () => {
      const logged: string[] = [];
      const client = await connect(
        fakeDaemon(async () => {
          throw error();
        }),
        { log: (l) => logged.push(l) },
      );
      const r = await call(client, 'message_status', { id: 12 });
      expect(r.isError).toBe(true);
      expect(r.text).toMatch(wording);
      expect(r.text).not.toContain(SOCKET_PATH);
      expect(r.text).not.toMatch(/\n|\bat .*:\d+/);
    });
  }

  it('denied: the daemon\'s reason, as a tool error', async () => {
    const client = await connect(fakeDaemon(async () => ({ status: 202, body: { id: 3, messageId: 'X', state: 'denied', reason: '15550003333@s.whatsapp.net is not in allowTo of account sales' } })));
    const r = await call(client, 'send_message', { account: 'sales', to: '15550003333', text: 'hi' });
    expect(r).toMatchObject({ isError: true, text: 'denied: 15550003333 is not in allowTo of account sales' });
  });

  it('held is not an error, and says it waits for an operator', async () => {
    const client = await connect(fakeDaemon(async () => ({ status: 202, body: { id: 4, messageId: 'Y', state: 'held', reason: 'hold by four-eyes' } })));
    const r = await call(client, 'send_message', { account: 'sales', to: '15550003333', text: 'hi' });
    expect(r.isError).toBe(false);
    expect(r.structured).toMatchObject({ id: 4, state: 'held', note: expect.stringContaining('waits for an operator') });
  });

  it('a daemon that does not answer: timeout, and the request is aborted (its connection is not left open)', async () => {
    const daemon = fakeDaemon(() => new Promise(() => {}));
    const client = await connect(daemon, { timeoutMs: 50 });
    const r = await call(client, 'list_accounts', {});
    expect(r).toMatchObject({ isError: true, text: expect.stringMatching(/^timeout: the wa-supervisor daemon did not answer within 50 ms/) });
    expect(daemon.signals.map((signal) => signal?.aborted)).toEqual([true]);
  });
});

describe('the port to a real daemon socket', () => {
  it('a call past its deadline closes its connection: a daemon that hangs holds nothing', async () => {
    const { dir, cleanup } = makeTmpDir();
    const path = join(dir, 'd.sock');
    const daemon = await silentDaemon(path);
    try {
      const port = withDeadline(controlPort(new ControlClient({ socket: { path, source: 'flag' }, token: 'wst_x' })), 200);
      const asked = port.request('GET', '/v1/me');
      await daemon.received;
      await expect(asked).rejects.toBeInstanceOf(CallTimeoutError);
      await Promise.race([daemon.hungUp, new Promise((_, reject) => setTimeout(() => reject(new Error('the connection stayed open after the deadline')), 5000).unref())]);
    } finally {
      await daemon.close();
      cleanup();
    }
  });
});

describe('starting', () => {
  const me = (body: unknown) => fakeDaemon(async () => ({ status: 200, body }));
  it('refuses an operator, and a token of another client than --client names', async () => {
    await expect(requireClient(me({ role: 'operator' }), undefined)).rejects.toThrow(StartRefused);
    await expect(requireClient(me({ role: 'client', name: 'other', accounts: ['x'], may: ['read'] }), 'agent')).rejects.toThrow(/belongs to client "other", not "agent"/);
    await expect(requireClient(me({ role: 'client', name: 'agent', accounts: ['sales'], may: ['send'] }), 'agent')).resolves.toEqual({ name: 'agent', accounts: ['sales'], may: ['send'] });
  });
});
