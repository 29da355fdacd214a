// Ambiguous sends against the emulator: an unknown row is settled by a late receipt within the
// settle window after the reconnect, or re-sent once with the same id when nothing can settle
// it; and a repeated idempotency key with --wait follows the existing row to its end.
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli-process.js';
import { type DaemonEvent, type World, useWorlds } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);

const PHONE = '15550001111';
const SETTLE_MS = 4000;

type Accepted = { id: number; messageId: string; state: string };
type Row = { state: string; wireSends: number; messageId: string };

async function send(w: World, to: string, text: string, extra: Record<string, unknown> = {}): Promise<Accepted> {
  return (await w.client.request<Accepted>('POST', '/v1/messages', { account: 'main', to, text, ...extra })).body;
}

async function row(w: World, id: number): Promise<Row> {
  return (await w.client.request<Row>('GET', `/v1/messages/${id}`)).body;
}

const ofRow = (id: number) => (e: DaemonEvent) => e.id === id && e.type.startsWith('message.');

describe('an unknown row after a reconnect', () => {
  // Before the settle window, the drain re-sent the unknown row the moment the account was open
  // again, before the receipt waiting in the offline queue could arrive: two wire sends.
  it('the server took the message but its ack was lost with the connection: the late receipt settles it, with no second wire send', async () => {
    const world = await newWorld({ config: { outbox: { settleMs: SETTLE_MS } } });
    await world.addAndPair('main', PHONE);
    const peer = '15550005001';
    world.emulator.injectFault(PHONE, { kind: 'ack-drop', then: 'terminate' });
    const from = world.events.length;
    const res = await send(world, peer, 'ack lost');
    await world.waitEvent((e) => e.type === 'message.unknown' && e.id === res.id, { from });
    const delivered = await world.waitEvent((e) => e.type === 'message.delivered' && e.id === res.id, { from, timeoutMs: 30_000 });
    expect(await row(world, res.id)).toMatchObject({ state: 'delivered', wireSends: 1 });
    expect(world.emulator.peerMessages(peer)).toEqual([expect.objectContaining({ id: res.messageId, copies: 1 })]);
    expect(delivered.note).toBe("settled by the server's ack or a receipt");
    const sends = world.events.slice(from).filter((e) => e.type === 'message.sending' && e.id === res.id);
    expect(sends).toHaveLength(1);
  });

  it('no ack and no receipt can come (the server read the message and dropped it): re-sent once, with the same id, after the settle window', async () => {
    const world = await newWorld({ config: { outbox: { settleMs: SETTLE_MS } } });
    await world.addAndPair('main', PHONE);
    const peer = '15550005002';
    // A first message, so the peer's devices and session are known and the next send is one write.
    const warm = await send(world, peer, 'hello');
    await world.waitEvent((e) => e.type === 'message.delivered' && e.id === warm.id);
    // The server reads the message but does nothing with it; the probe then ends the socket.
    world.emulator.injectFault(PHONE, { kind: 'app-silent' });
    const from = world.events.length;
    const res = await send(world, peer, 'dropped by the server');
    const unknown = await world.waitEvent((e) => e.type === 'message.unknown' && e.id === res.id, { from, timeoutMs: 30_000 });
    expect(unknown.wireSends).toBe(1);
    const reopened = await world.waitEvent((e) => e.type === 'account.state' && e.account === 'main' && e.state === 'open', { from });
    await world.waitEvent((e) => e.type === 'message.delivered' && e.id === res.id, { from, timeoutMs: 30_000 });
    const sends = world.events.slice(from).filter((e) => e.type === 'message.sending' && e.id === res.id);
    expect(sends).toHaveLength(2);
    expect(Date.parse(sends[1]!.at) - Date.parse(reopened.at)).toBeGreaterThanOrEqual(SETTLE_MS - 100);
    expect(sends[1]!.note).toBe('no ack, receipt or echo within the settle window: sent again with the same id');
    expect(await row(world, res.id)).toMatchObject({ state: 'delivered', wireSends: 2, messageId: res.messageId });
    expect(world.emulator.peerMessages(peer).map((m) => [m.id, m.copies])).toEqual([
      [warm.messageId, 1],
      [res.messageId, 1],
    ]);
  });
});

describe('what counts as a wire send', () => {
  // Before: the send was counted before the call, so this row was unknown with a wire send it
  // never made, and was sent "again" (wireSends 2) after the reconnect.
  it('a send that never got past looking up the peer\'s devices (the server went silent) is not counted', async () => {
    const world = await newWorld({ config: { outbox: { settleMs: SETTLE_MS } } });
    await world.addAndPair('main', PHONE);
    const peer = '15550005006'; // never written to: Baileys asks the server for its devices first
    world.emulator.injectFault(PHONE, { kind: 'app-silent' });
    const from = world.events.length;
    const res = await send(world, peer, 'stuck at the device lookup');
    const back = await world.waitEvent((e) => e.type === 'message.queued' && e.id === res.id && e.note !== undefined, { from, timeoutMs: 30_000 });
    expect(back).toMatchObject({ note: 'nothing was written before the connection closed', wireSends: 0 });
    await world.waitEvent((e) => e.type === 'message.delivered' && e.id === res.id, { from, timeoutMs: 30_000 });
    expect(await row(world, res.id)).toMatchObject({ state: 'delivered', wireSends: 1 });
    expect(world.emulator.peerMessages(peer)).toEqual([expect.objectContaining({ id: res.messageId, copies: 1 })]);
  });
});

describe('a repeated idempotency key with wait', () => {
  // Before: the stream listened for the new request's id while the row's events carried the
  // first request's, so a replay of a row still on its way never ended.
  it('through the socket API: streams the existing row until it is sent, then answers a finished row at once', async () => {
    const world = await newWorld();
    await world.client.request('POST', '/v1/accounts', { id: 'main', wsUrl: world.emulator.url }); // not paired: the row waits
    const peer = '15550005003';
    const first = await send(world, peer, 'once', { idempotencyKey: 'replay-api' });
    expect(first.state).toBe('queued');
    const lines: Array<Record<string, unknown>> = [];
    let paired: Promise<string> | null = null;
    const streamed = world.client.stream('/v1/messages?wait=sent', (e) => void lines.push(e as Record<string, unknown>), {
      method: 'POST',
      body: { account: 'main', to: peer, text: 'once', idempotencyKey: 'replay-api' },
      onOpen: () => (paired = world.pair('main', PHONE)),
    });
    await streamed;
    await paired;
    expect(lines[0]).toMatchObject({ type: 'accepted', id: first.id, messageId: first.messageId, state: 'queued', replayed: true });
    expect(lines.map((l) => l.state)).toEqual(['queued', 'sending', 'sent']);
    expect(new Set(lines.map((l) => l.id))).toEqual(new Set([first.id]));
    await world.waitEvent((e) => e.type === 'message.delivered' && e.id === first.id);
    const again: Array<Record<string, unknown>> = [];
    await world.client.stream('/v1/messages?wait=sent', (e) => void again.push(e as Record<string, unknown>), {
      method: 'POST',
      body: { account: 'main', to: peer, text: 'once', idempotencyKey: 'replay-api' },
    });
    expect(again).toEqual([{ type: 'accepted', id: first.id, messageId: first.messageId, state: 'delivered', replayed: true }]);
    expect(world.emulator.peerMessages(peer)).toHaveLength(1);
  });

  it('through the CLI: send --wait --idempotency-key follows the existing row until delivered and exits 0', async () => {
    const world = await newWorld();
    await world.client.request('POST', '/v1/accounts', { id: 'main', wsUrl: world.emulator.url });
    const peer = '15550005004';
    const first = await send(world, peer, 'cli once', { idempotencyKey: 'replay-cli' });
    const cli = runCli(
      ['send', '--account', 'main', '--to', peer, '--text', 'cli once', '--idempotency-key', 'replay-cli', '--wait', '--until', 'delivered', '--json', '--socket', world.socket],
      world.env,
    );
    // The CLI's stream is open (its request logged) before the account can send.
    await world.daemon.waitForLog((l) => l.msg === 'control request' && String(l.url).startsWith('/v1/messages?wait=delivered'));
    await world.pair('main', PHONE);
    const r = await cli;
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; id: number; state: string; replayed?: boolean });
    expect(lines[0]).toMatchObject({ type: 'accepted', id: first.id, state: 'queued', replayed: true });
    expect(lines.map((l) => l.state)).toEqual(['queued', 'sending', 'sent', 'delivered']);
    expect(new Set(lines.map((l) => l.id))).toEqual(new Set([first.id]));
    expect(world.emulator.peerMessages(peer)).toHaveLength(1);
  });
});
