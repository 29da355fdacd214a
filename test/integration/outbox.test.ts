// The outbox end to end: the daemon (real Baileys) sends through the emulator, whose decrypted
// messages are the truth about what a peer saw.
import { afterEach, describe, expect, it } from 'vitest';
import { type World, useWorlds } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);

const ACCOUNT_PHONE = '15550001111';
const PEER = '15550002222';

type Accepted = { id: number; messageId: string; state: string; reason?: string };

async function send(w: World, to: string, text: string, extra: Record<string, unknown> = {}): Promise<Accepted> {
  return (await w.client.request<Accepted>('POST', '/v1/messages', { account: 'main', to, text, ...extra })).body;
}

describe('outbox against the emulator', () => {
  it('a sent message is decrypted once at the peer with the id assigned at enqueue, and goes queued -> sent -> delivered', async () => {
    const world = await newWorld();
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
    const world = await newWorld();
    await world.addAndPair('main', ACCOUNT_PHONE);
    const a = await send(world, PEER, 'once', { idempotencyKey: 'order-42' });
    const b = await send(world, PEER, 'once', { idempotencyKey: 'order-42' });
    expect({ id: b.id, messageId: b.messageId }).toEqual({ id: a.id, messageId: a.messageId });
    await world.waitEvent((e) => e.type === 'message.delivered' && e.id === a.id);
    expect(world.emulator.peerMessages(PEER)).toHaveLength(1);
  });

  it('rejects bad input with a 4xx naming the field, stores nothing, and keeps serving', async () => {
    const world = await newWorld();
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

describe('send --wait and the messages commands', () => {
  it('send --wait --json streams only this message until it is delivered; messages show --json prints the row', async () => {
    const world = await newWorld();
    const w = world;
    await w.addAndPair('main', ACCOUNT_PHONE);
    const { runCli } = await import('../helpers/cli-process.js');
    // Another message in flight at the same time must not appear in this stream.
    void send(w, '15550002999', 'someone else');
    const r = await runCli(['send', '--account', 'main', '--to', PEER, '--text', 'wait for me', '--wait', '--until', 'delivered', '--json', '--socket', w.socket], w.env);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; id: number; state: string; requestId?: string });
    expect(lines[0]).toMatchObject({ type: 'accepted', state: 'queued' });
    expect(lines.map((l) => `${l.type}:${l.state}`)).toEqual(['accepted:queued', 'message.queued:queued', 'message.sending:sending', 'message.sent:sent', 'message.delivered:delivered']);
    expect(new Set(lines.map((l) => l.id)).size).toBe(1);
    const show = await runCli(['messages', 'show', String(lines[0]!.id), '--json', '--socket', w.socket], w.env);
    expect(JSON.parse(show.stdout)).toMatchObject({ id: lines[0]!.id, state: 'delivered', text: 'wait for me', to: `${PEER}@s.whatsapp.net` });
  });

  it('cancel, retry, list by state and prune', async () => {
    const world = await newWorld();
    const w = world;
    await w.client.request('POST', '/v1/accounts', { id: 'main', wsUrl: w.emulator.url }); // not paired: rows wait
    const a = await send(w, PEER, 'to cancel');
    const cancelled = (await w.client.request<{ state: string }>('POST', `/v1/messages/${a.id}/cancel`)).body;
    expect(cancelled.state).toBe('cancelled');
    await expect(w.client.request('POST', `/v1/messages/${a.id}/cancel`)).rejects.toMatchObject({ status: 409 });
    const list = (await w.client.request<{ messages: Array<{ id: number }> }>('GET', '/v1/messages?state=cancelled')).body.messages;
    expect(list.map((m) => m.id)).toEqual([a.id]);
    const retried = (await w.client.request<{ state: string; messageId: string }>('POST', `/v1/messages/${a.id}/retry`)).body;
    expect(retried).toMatchObject({ state: 'queued', messageId: a.messageId });
    await w.client.request('POST', `/v1/messages/${a.id}/cancel`);
    expect((await w.client.request<{ deleted: number }>('POST', '/v1/messages/prune', { olderThan: '1h' })).body.deleted).toBe(0);
    expect((await w.client.request<{ deleted: number }>('POST', '/v1/messages/prune', { olderThan: 0 })).body.deleted).toBe(1);
    await expect(w.client.request('POST', '/v1/messages/prune', { olderThan: 'soon' })).rejects.toMatchObject({ status: 400 });
  });
});
