// The example bot's handling of a daemon that goes away in the middle of a reply: the send is
// made again with the same idempotency key (so the daemon answers the first message, if it took
// it), and the bot carries on; a refusal is not retried. The typed client is a fake here; the
// real client and daemon are in test/integration/echo-bot.test.ts.
import { describe, expect, it } from 'vitest';
import { echoBot } from '../../examples/echo-bot.js';
import { Client, ConnectionLostError, DaemonUnreachableError, PolicyDeniedError, ValidationError, type InboxMessage, type Message, type SendRequest } from 'wa-supervisor/client';

const inbound = (n: number): InboxMessage => ({
  cursor: String(n),
  id: `ID${n}`,
  account: 'bot',
  chat: '15550001111@s.whatsapp.net',
  from: '15550001111@s.whatsapp.net',
  chatType: 'direct',
  kind: 'text',
  text: `hello ${n}`,
  timestamp: 1,
  receivedAt: '2026-01-01T00:00:00.000Z',
  status: 'ok',
});

/** A client whose inbox holds `messages` and whose sends answer from `answers`, one per call. */
function fakeClient(messages: InboxMessage[], answers: Array<Error | 'ok'>) {
  const sends: SendRequest[] = [];
  const client = {
    async *consume() {
      yield* messages;
    },
    async send(req: SendRequest): Promise<Message> {
      sends.push(req);
      const a = answers.shift() ?? 'ok';
      if (a !== 'ok') throw a;
      return { id: sends.length, state: 'queued' } as Message;
    },
  };
  return { client: client as unknown as Client, sends };
}

describe('the echo bot', () => {
  it('sends again with the same key when the connection broke mid-send or the daemon is down, then goes on', async () => {
    const { client, sends } = fakeClient([inbound(1), inbound(2)], [new ConnectionLostError('s', 'ECONNRESET'), new DaemonUnreachableError('s', 'ENOENT'), 'ok', 'ok']);
    const replies: string[] = [];
    await echoBot({ consumer: 'echo', client, onReply: (m) => replies.push(m.id) });
    expect(sends.map((s) => s.idempotencyKey)).toEqual(['echo:bot:15550001111@s.whatsapp.net:ID1', 'echo:bot:15550001111@s.whatsapp.net:ID1', 'echo:bot:15550001111@s.whatsapp.net:ID1', 'echo:bot:15550001111@s.whatsapp.net:ID2']);
    expect(replies).toEqual(['ID1', 'ID2']);
  });

  it('does not retry a refusal: the policy is told once and the bot goes on; a bad request stops it', async () => {
    const denied = new PolicyDeniedError({ id: 1, messageId: 'X', state: 'denied', reason: 'deny by rule' });
    const { client, sends } = fakeClient([inbound(1), inbound(2)], [denied, 'ok']);
    const replies: Array<Message | PolicyDeniedError> = [];
    await echoBot({ consumer: 'echo', client, onReply: (_m, r) => replies.push(r) });
    expect(sends).toHaveLength(2);
    expect(replies[0]).toBe(denied);

    const bad = fakeClient([inbound(1)], [new ValidationError(400, 'bad_request', 'to: bad')]);
    await expect(echoBot({ consumer: 'echo', client: bad.client })).rejects.toBeInstanceOf(ValidationError);
    expect(bad.sends).toHaveLength(1);
  });
});
