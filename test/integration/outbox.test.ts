// The outbox end to end: the daemon (real Baileys) sends through the emulator, whose decrypted
// messages are the truth about what a peer saw.
import { afterEach, describe, expect, it } from 'vitest';
import { startWorld, type World } from '../helpers/world.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const ACCOUNT_PHONE = '15550001111';
const PEER = '15550002222';

type Accepted = { id: number; messageId: string; state: string; reason?: string };

async function send(w: World, to: string, text: string, extra: Record<string, unknown> = {}): Promise<Accepted> {
  return (await w.client.request<Accepted>('POST', '/v1/messages', { account: 'main', to, text, ...extra })).body;
}

describe('outbox against the emulator', () => {
  it('a sent message is decrypted once at the peer with the id assigned at enqueue, and goes queued -> sent -> delivered', async () => {
    world = await startWorld();
    await world.addAndPair('main', ACCOUNT_PHONE);
    const from = world.events.length;
    const res = await send(world, `+${PEER}`, 'hello from the outbox');
    expect(res).toMatchObject({ state: 'queued', messageId: expect.stringMatching(/^3EB0[0-9A-F]{20}$/) });
    await world.waitEvent((e) => e.type === 'message.delivered' && e.id === res.id, { from });
    const atPeer = world.emulator.peerMessages(PEER);
    expect(atPeer).toEqual([expect.objectContaining({ id: res.messageId, text: 'hello from the outbox', copies: 1 })]);
    const states = world.events.slice(from).filter((e) => e.id === res.id).map((e) => e.state);
    expect(states).toEqual(['queued', 'sending', 'sent', 'delivered']);
    const row = (await world.client.request<{ state: string; wireSends: number }>('GET', `/v1/messages/${res.id}`)).body;
    expect(row).toMatchObject({ state: 'delivered', wireSends: 1 });
  });

  it('the same idempotency key returns the same row and never a second message', async () => {
    world = await startWorld();
    await world.addAndPair('main', ACCOUNT_PHONE);
    const a = await send(world, PEER, 'once', { idempotencyKey: 'order-42' });
    const b = await send(world, PEER, 'once', { idempotencyKey: 'order-42' });
    expect({ id: b.id, messageId: b.messageId }).toEqual({ id: a.id, messageId: a.messageId });
    await world.waitEvent((e) => e.type === 'message.delivered' && e.id === a.id);
    expect(world.emulator.peerMessages(PEER)).toHaveLength(1);
  });

  it('rejects bad input with a 4xx naming the field, stores nothing, and keeps serving', async () => {
    world = await startWorld();
    await world.addAndPair('main', ACCOUNT_PHONE);
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{ account: 'nope', to: PEER, text: 'x' }, 404, 'account: no account "nope"'],
      [{ account: 'main', to: '12', text: 'x' }, 400, 'to: expected an international phone number'],
      [{ account: 'main', to: 'someone@example.com', text: 'x' }, 400, 'to: not a WhatsApp recipient'],
      [{ account: 'main', to: PEER, text: '   ' }, 400, 'text: must not be empty'],
      [{ account: 'main', to: PEER, text: 'x'.repeat(70_000) }, 400, 'text: longer than 65536 characters'],
      [{ account: 'main', to: PEER }, 400, 'text: required'],
      [{ account: 'main', to: PEER, text: 5 }, 400, 'text: expected a string'],
      [{ account: 'main', to: PEER, text: 'x', colour: 'red' }, 400, 'colour: unknown field'],
      [{ account: 'main', to: PEER, text: 'x', kind: 'alert' }, 400, 'kind: only "message" can be sent through the API'],
    ];
    for (const [body, status, message] of cases) {
      const err = await world.client.request('POST', '/v1/messages', body).catch((e: { status: number; message: string }) => e);
      expect(err, JSON.stringify(body).slice(0, 80)).toMatchObject({ status });
      expect((err as unknown as Error).message).toContain(message);
    }
    const list = (await world.client.request<{ messages: unknown[] }>('GET', '/v1/messages')).body;
    expect(list.messages).toEqual([]);
  });
});
