// An inbound message the account cannot decrypt: Baileys sends the peer a retry receipt, the
// emulator's peer phone re-sends it encrypted anew, and the inbox row kept for the undecryptable
// copy is filled with the content (status ok) under the same id, once. When the account has lost
// its session with the peer, the re-sent copy fails too; the next retry receipt carries the
// account's keys, and the peer starts a new session from them, as a phone does.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AccountSummary } from '../../src/control/wire.js';
import { useWorlds } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);
const MAIN = '15550001111';
const PEER = '15550008200';

type Row = { cursor: string; id: string; kind: string; text: string | null; status: string; detail?: Record<string, unknown> };

describe('an inbound message that could not be decrypted', () => {
  it('is asked for again, re-sent by the peer, and its row filled: one row, status ok, the text', async () => {
    const w = await newWorld({ config: (url) => ({ accounts: [{ id: 'main', wsUrl: url }] }) });
    await w.pair('main', MAIN);
    // A first message sets up the Signal session, so the corrupted one is a `msg`, not a `pkmsg`.
    const { id: first } = await w.emulator.sendInbound({ from: PEER, to: MAIN, text: 'hello' });
    await w.waitEvent((e) => e.type === 'message.inbound' && e.id === first);
    const from = w.events.length;
    const mark = w.emulator.timeline.mark();
    const { id } = await w.emulator.sendInbound({ from: PEER, to: MAIN, text: 'garbled on the way', undecryptable: true });
    // The account's retry receipt, and the peer's re-send, on the wire.
    await w.emulator.timeline.waitFor({ phone: MAIN, dir: 'in', tag: 'receipt', attrs: { type: 'retry', id } }, { after: mark });
    const filled = await w.waitEvent((e) => e.type === 'message.inbound' && e.id === id && e.status === 'ok', { from });
    expect(filled).toMatchObject({ kind: 'text', text: 'garbled on the way' });
    expect(w.emulator.inboundResends(id)).toBe(1);
    // Seen first as undecryptable, then filled, under the same id.
    const seen = w.events.slice(from).filter((e) => e.type === 'message.inbound' && e.id === id).map((e) => e.status);
    expect(seen).toEqual(['undecryptable', 'ok']);
    const rows = (await w.client.request<{ messages: Row[] }>('GET', '/v1/inbox?account=main')).body.messages;
    expect(rows.filter((r) => r.id === id)).toEqual([expect.objectContaining({ status: 'ok', text: 'garbled on the way' })]);
    const accounts = (await w.client.request<{ accounts: AccountSummary[] }>('GET', '/v1/accounts')).body.accounts;
    expect(accounts.find((a) => a.id === 'main')?.inbox).toMatchObject({ messages: 2, undecryptable: 0 });
  });

  it('after the account lost its session with the peer: the second retry receipt carries its keys, the peer starts a new session, and the row is filled once', async () => {
    const w = await newWorld({ config: (url) => ({ accounts: [{ id: 'main', wsUrl: url }] }) });
    await w.pair('main', MAIN);
    const { id: first } = await w.emulator.sendInbound({ from: PEER, to: MAIN, text: 'hello' });
    await w.waitEvent((e) => e.type === 'message.inbound' && e.id === first);
    // The account forgets its Signal sessions (a restored backup, a lost write): the peer's next
    // message comes on a session only the peer still has.
    w.daemon.child.kill('SIGTERM');
    await w.daemon.exited;
    const db = new Database(join(w.dir, 'state', 'state.db'));
    const dropped = db.prepare(`DELETE FROM wa_keys WHERE account = 'main' AND type = 'session'`).run().changes;
    db.close();
    expect(dropped).toBeGreaterThan(0);
    await w.restartDaemon();
    await w.waitState('main', 'open');
    const from = w.events.length;
    const mark = w.emulator.timeline.mark();
    const { id } = await w.emulator.sendInbound({ from: PEER, to: MAIN, text: 'after the session was lost' });
    const filled = await w.waitEvent((e) => e.type === 'message.inbound' && e.id === id && e.status === 'ok', { from, timeoutMs: 20_000 });
    expect(filled).toMatchObject({ kind: 'text', text: 'after the session was lost' });
    const retries = w.emulator.timeline.entries({ after: mark }).filter((e) => e.phone === MAIN && e.dir === 'in' && e.stanza.startsWith('<receipt') && e.stanza.includes('type="retry"') && e.stanza.includes(id));
    expect(retries.length).toBeGreaterThanOrEqual(2);
    expect(retries.at(-1)!.stanza).toContain('<keys');
    expect(w.emulator.inboundSessionsRebuilt(id)).toBe(1);
    const rows = (await w.client.request<{ messages: Row[] }>('GET', '/v1/inbox?account=main&status=all')).body.messages;
    expect(rows.filter((r) => r.id === id)).toEqual([expect.objectContaining({ status: 'ok', text: 'after the session was lost' })]);
    // The new session carries on: the next message decrypts at the first try.
    const { id: next } = await w.emulator.sendInbound({ from: PEER, to: MAIN, text: 'and the next one' });
    await w.waitEvent((e) => e.type === 'message.inbound' && e.id === next && e.status === 'ok', { from });
    expect(w.emulator.inboundResends(next)).toBe(0);
  });

  it('a copy whose key the session already used, with its content never stored: the sender is asked again, and the row is filled once', async () => {
    const w = await newWorld({ config: (url) => ({ accounts: [{ id: 'main', wsUrl: url }] }) });
    await w.pair('main', MAIN);
    const { id: first } = await w.emulator.sendInbound({ from: PEER, to: MAIN, text: 'hello' });
    await w.waitEvent((e) => e.type === 'message.inbound' && e.id === first);
    const { id } = await w.emulator.sendInbound({ from: PEER, to: MAIN, text: 'decrypted, then lost' });
    await w.waitEvent((e) => e.type === 'message.inbound' && e.id === id && e.status === 'ok');
    // The session has moved past the message, but its row is gone: the state a crash between the
    // two would leave if they were ever written apart.
    w.daemon.child.kill('SIGTERM');
    await w.daemon.exited;
    const db = new Database(join(w.dir, 'state', 'state.db'));
    expect(db.prepare('DELETE FROM inbox WHERE id = ?').run(id).changes).toBe(1);
    db.close();
    await w.restartDaemon();
    await w.waitState('main', 'open');
    const from = w.events.length;
    const mark = w.emulator.timeline.mark();
    // The server hands the same ciphertext out again.
    expect(w.emulator.redeliverInbound(id)).toBe(1);
    const filled = await w.waitEvent((e) => e.type === 'message.inbound' && e.id === id && e.status === 'ok', { from, timeoutMs: 20_000 });
    expect(filled).toMatchObject({ kind: 'text', text: 'decrypted, then lost' });
    await w.emulator.timeline.waitFor({ phone: MAIN, dir: 'in', tag: 'receipt', attrs: { type: 'retry', id } }, { after: mark });
    expect(w.emulator.inboundResends(id)).toBe(1);
    const rows = (await w.client.request<{ messages: Row[] }>('GET', '/v1/inbox?account=main&status=all')).body.messages;
    expect(rows.filter((r) => r.id === id)).toEqual([expect.objectContaining({ status: 'ok', text: 'decrypted, then lost' })]);
  });

  it('a copy whose key was used for a message that is stored: one re-send, still one row', async () => {
    const w = await newWorld({ config: (url) => ({ accounts: [{ id: 'main', wsUrl: url }] }) });
    await w.pair('main', MAIN);
    const { id } = await w.emulator.sendInbound({ from: PEER, to: MAIN, text: 'only once' });
    await w.waitEvent((e) => e.type === 'message.inbound' && e.id === id && e.status === 'ok');
    const mark = w.emulator.timeline.mark();
    expect(w.emulator.redeliverInbound(id)).toBe(1);
    await w.emulator.timeline.waitFor({ phone: MAIN, dir: 'in', tag: 'receipt', attrs: { type: 'retry', id } }, { after: mark });
    // The re-sent copy decrypts and is answered with a delivery receipt; the row is the one it was.
    await w.emulator.timeline.waitFor((e) => e.seq > mark && e.phone === MAIN && e.dir === 'in' && e.stanza.startsWith('<receipt') && e.stanza.includes(id) && !e.stanza.includes('type="retry"'), { timeoutMs: 20_000 });
    expect(w.emulator.inboundResends(id)).toBe(1);
    const rows = (await w.client.request<{ messages: Row[] }>('GET', '/v1/inbox?account=main&status=all')).body.messages;
    expect(rows.filter((r) => r.id === id)).toEqual([expect.objectContaining({ status: 'ok', text: 'only once' })]);
  });
});
