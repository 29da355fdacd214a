// The typed client and the example bot against a real daemon and the emulator: the bot answers
// through the gate (a person the policy refuses gets nothing), survives a kill -9 of the daemon
// with no message answered twice or left out, and every error says who failed.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoBot } from '../../examples/echo-bot.js';
import {
  Client,
  ConflictError,
  DaemonUnreachableError,
  ForbiddenError,
  MessageEndedError,
  NotFoundError,
  PolicyDeniedError,
  TimeoutError,
  ValidationError,
  type DaemonEvent,
  type InboxMessage,
  type Message,
} from 'wa-supervisor/client';
import { makeTmpDir } from '../helpers/tmp.js';
import { startWorld, type World } from '../helpers/world.js';

const BOT = '15550002001';
const OTHER = '15550002002';
const FRIEND = '15550002101';
const REFUSED = '15550002102';
const HELD = '15550002103';
const TOKEN = 'wst_echo-bot-token-0123456789abcdef01';

let world: World;
let tmp: { dir: string; cleanup: () => void };
let clientSocket: string;
let client: Client;

beforeAll(async () => {
  tmp = makeTmpDir('wae-');
  clientSocket = join(tmp.dir, 'c', 'clients.sock');
  world = await startWorld({
    config: (url) => ({
      clientSocket,
      clients: [{ name: 'echo-bot', tokenSha256: createHash('sha256').update(TOKEN).digest('hex'), accounts: ['bot'] }],
      // Only "echo" is the client's to read: the others cover accounts that are not all its own.
      consumers: [
        { name: 'echo', type: 'stream', accounts: ['bot'] },
        { name: 'everyone', type: 'stream' },
        { name: 'both', type: 'stream', accounts: ['bot', 'other'] },
      ],
      policy: {
        default: 'allow',
        rules: [
          { action: 'deny', name: 'not-this-person', match: { account: 'bot', peer: REFUSED } },
          { action: 'hold', name: 'four-eyes', match: { account: 'bot', peer: HELD } },
        ],
      },
      accounts: [
        { id: 'bot', wsUrl: url },
        { id: 'other', wsUrl: url },
      ],
    }),
  });
  await world.pair('bot', BOT);
  await world.pair('other', OTHER);
  client = new Client({ socket: clientSocket, token: TOKEN });
}, 60_000);
afterAll(async () => {
  await world?.close();
  tmp?.cleanup();
});

const echoesTo = (phone: string) => world.emulator.peerMessages(phone).filter((m) => m.from === BOT && m.text?.startsWith('echo: '));

/** Polls `read` until `ok` holds (a state another process settles), or fails after `ms`. */
async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the echo bot', () => {
  it('answers through the gate, refuses nobody twice, and carries on across a kill -9 of the daemon', async () => {
    const stop = new AbortController();
    const replies: Array<{ to: InboxMessage; reply: Message | PolicyDeniedError }> = [];
    // The daemon is killed right after the reply to "two" is enqueued, before the bot can
    // acknowledge "two": after the restart the stream hands "two" again.
    let killed = false;
    const onReply = (to: InboxMessage, reply: Message | PolicyDeniedError) => {
      replies.push({ to, reply });
      if (to.text === 'two' && !killed) killed = world.daemon.child.kill('SIGKILL');
    };
    const bot = echoBot({ consumer: 'echo', client, signal: stop.signal, onReply });

    await world.emulator.sendInbound({ from: FRIEND, to: BOT, text: 'one' });
    await world.emulator.sendInbound({ from: REFUSED, to: BOT, text: 'let me in' });
    await world.emulator.sendInbound({ from: FRIEND, to: BOT, text: 'two' });
    await world.daemon.exited;
    await world.restartDaemon({ kill: true });
    await world.waitState('bot', 'open', 30_000);
    await world.emulator.waitForDecrypted(FRIEND, (m) => m.text === 'echo: two', { timeoutMs: 20_000 });
    await world.emulator.sendInbound({ from: FRIEND, to: BOT, text: 'three' });
    await world.emulator.waitForDecrypted(FRIEND, (m) => m.text === 'echo: three', { timeoutMs: 30_000 });

    // Everything is acknowledged: the consumer's cursor reaches the last message.
    const last = (await client.inbox({ account: 'bot' })).messages.at(-1)!;
    const view = await eventually(
      async () => (await world.client.request<{ cursor: string; lag: { unacknowledged: number } }>('GET', '/v1/consumers/echo')).body,
      (v) => v.cursor === last.cursor,
    );
    expect(view).toMatchObject({ cursor: last.cursor, lag: { unacknowledged: 0 } });
    stop.abort();
    await bot;

    expect(echoesTo(FRIEND).map((m) => m.text)).toEqual(['echo: one', 'echo: two', 'echo: three']);
    // Each message was handled once: "two", handed again after the restart, was skipped (and acknowledged).
    // (Two chats' messages are stored in the order they arrive, which is not the order sent.)
    expect(replies.map((r) => r.to.text).sort()).toEqual(['let me in', 'one', 'three', 'two']);
    // The refused person got nothing, and the bot was told why.
    expect(echoesTo(REFUSED)).toEqual([]);
    const refused = replies.find((r) => r.to.from.startsWith(REFUSED))!.reply;
    expect(refused).toBeInstanceOf(PolicyDeniedError);
    expect((refused as PolicyDeniedError).message).toMatch(/^denied: /);
  }, 120_000);
});

describe('the typed client', () => {
  it('says who the client is', async () => {
    expect(await client.me()).toEqual({ role: 'client', name: 'echo-bot', accounts: ['bot'], may: ['send', 'read', 'events'], consumers: ['echo'] });
  });

  it('send() answers the stored row, and waitFor follows it to delivered', async () => {
    const row = await client.send({ account: 'bot', to: `+${FRIEND}`, text: 'typed hello' });
    expect(row).toMatchObject({ account: 'bot', to: `${FRIEND}@s.whatsapp.net`, text: 'typed hello', clientRole: 'client', client: 'echo-bot' });
    expect(['queued', 'sending', 'sent', 'delivered', 'read']).toContain(row.state);
    const delivered = await client.waitFor(row.id, 'delivered', { timeoutMs: 20_000 });
    expect(['delivered', 'read']).toContain(delivered.state);
    expect(world.emulator.peerMessages(FRIEND).some((m) => m.text === 'typed hello')).toBe(true);
  });

  it('a held message ends the wait: it will not be sent without an operator', async () => {
    const row = await client.send({ account: 'bot', to: HELD, text: 'needs a second pair of eyes' });
    expect(row.state).toBe('held');
    const err = await client.waitFor(row.id, 'sent', { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MessageEndedError);
    expect((err as MessageEndedError).row.state).toBe('held');
  });

  it('splits errors by who failed: the policy, the role, the request, the socket, the clock', async () => {
    const denied = await client.send({ account: 'bot', to: REFUSED, text: 'no' }).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(PolicyDeniedError);
    expect((denied as PolicyDeniedError).row.state).toBe('denied');

    const forbidden = await client.send({ account: 'other', to: FRIEND, text: 'not mine' }).catch((e: unknown) => e);
    expect(forbidden).toBeInstanceOf(ForbiddenError);
    expect((forbidden as ForbiddenError).status).toBe(403);
    await expect(client.events({ account: 'other' })).rejects.toBeInstanceOf(ForbiddenError);

    const invalid = await client.send({ account: 'bot', to: FRIEND }).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(ValidationError);
    expect((invalid as ValidationError).message).toMatch(/^text: required/);

    await expect(client.message(999_999)).rejects.toBeInstanceOf(NotFoundError);
    // A consumer that covers another account is not this client's to read, by stream or by pull.
    await expect(client.next('both')).rejects.toBeInstanceOf(ForbiddenError);
    await expect(client.next('everyone')).rejects.toBeInstanceOf(ForbiddenError);

    const nobody = new Client({ socket: join(tmp.dir, 'nobody.sock'), token: TOKEN, waitForDaemonMs: 0 });
    await expect(nobody.me()).rejects.toBeInstanceOf(DaemonUnreachableError);

    // A socket that accepts and never answers.
    const silentPath = join(tmp.dir, 'silent.sock');
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(silentPath, r));
    try {
      const slow = new Client({ socket: silentPath, token: TOKEN, timeoutMs: 300 });
      await expect(slow.me()).rejects.toBeInstanceOf(TimeoutError);
    } finally {
      silent.close();
    }
    // Nothing reached the refused person or the other account's peers.
    expect(world.emulator.peerMessages(REFUSED).filter((m) => m.from === BOT)).toEqual([]);
    expect(world.emulator.peerMessages(FRIEND).filter((m) => m.from === OTHER)).toEqual([]);
  });

  it('events() filters by type and account, and a pull read hands what ack then commits', async () => {
    const stop = new AbortController();
    const events = await client.events({ account: 'bot', type: 'message.sent' }, { signal: stop.signal });
    const row = await client.send({ account: 'bot', to: FRIEND, text: 'evented' });
    const seen: DaemonEvent[] = [];
    for await (const e of events) {
      seen.push(e);
      if (e.id === row.id) break;
    }
    stop.abort();
    expect(seen.every((e) => e.type === 'message.sent' && e.account === 'bot')).toBe(true);
    expect(seen.at(-1)).toMatchObject({ type: 'message.sent', id: row.id, account: 'bot' });

    // A pull read of the consumer: acknowledged rows are not handed again.
    await world.emulator.sendInbound({ from: FRIEND, to: BOT, text: 'pulled' });
    // (The bot's stream may still be closing on the daemon's side: 409 until it has.)
    const page = (await eventually(
      () => client.next('echo').catch((err: unknown) => (err instanceof ConflictError ? null : Promise.reject(err))),
      (p) => p !== null && p.messages.some((m) => m.text === 'pulled'),
    ))!;
    await expect(client.ack('echo', Number(page.next) + 1)).rejects.toBeInstanceOf(ValidationError);
    expect(await client.ack('echo', page.next)).toEqual({ consumer: 'echo', cursor: page.next });
    expect((await client.next('echo')).messages).toEqual([]);
  });
});
