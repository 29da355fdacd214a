// When a recipient cannot decrypt: its phone sends a retry receipt and the daemon re-sends the
// very message, re-encrypted, with the content the outbox kept, also after a restart (Baileys'
// own cache of recent messages is in memory). The emulator's peer is the truth.
import { afterEach, describe, expect, it } from 'vitest';
import type { AccountSummary } from '../../src/control/wire.js';
import { senders, useWorlds } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);
const MAIN = '15550001111';
const PEER = '15550008000';

describe('retry receipts', () => {
  it('a retry receipt that arrives after a daemon restart is answered with the original text, which the peer then decrypts once', async () => {
    const w = await newWorld({ config: (url) => ({ accounts: [{ id: 'main', wsUrl: url }] }) });
    await w.pair('main', MAIN);
    const { viaApi } = senders(() => w);
    // The peer's phone will fail to decrypt the next message and keep its retry receipt back.
    w.emulator.failDecrypt(PEER, { hold: true });
    const sent = await viaApi('main', PEER, 'the original text');
    await w.waitEvent((e) => e.type === 'message.sent' && e.id === sent.id);
    expect(w.emulator.peerMessages(PEER)).toEqual([]);
    await w.restartDaemon();
    await w.waitState('main', 'open');
    const from = w.events.length;
    expect(w.emulator.releaseRetries(PEER)).toBe(1);
    await w.waitEvent((e) => e.type === 'message.retry_requested' && e.messageId === sent.messageId, { from });
    const decrypted = await w.emulator.waitForDecrypted(PEER, (m) => m.id === sent.messageId);
    expect(decrypted).toMatchObject({ text: 'the original text', copies: 1 });
    expect(w.emulator.peerMessages(PEER)).toHaveLength(1);
    const status = (await w.client.request<AccountSummary>('GET', '/v1/accounts/main')).body;
    expect(status.retryReceipts).toMatchObject({ received: 1 });
    expect(status.retryReceipts.lastAt).not.toBeNull();
  });

  it('a real decryption failure at the peer is asked for again and answered without a restart', async () => {
    const w = await newWorld({ config: (url) => ({ accounts: [{ id: 'main', wsUrl: url }] }) });
    await w.pair('main', MAIN);
    const { viaApi } = senders(() => w);
    w.emulator.failDecrypt(PEER);
    const first = await viaApi('main', PEER, 'asked for twice');
    const decrypted = await w.emulator.waitForDecrypted(PEER, (m) => m.id === first.messageId);
    expect(decrypted).toMatchObject({ text: 'asked for twice', copies: 1 });
    expect(w.emulator.retryReceiptsSent(PEER)).toBe(1);
    // and the next message goes through on the session the retry set up
    const second = await viaApi('main', PEER, 'then plain sailing');
    await w.emulator.waitForDecrypted(PEER, (m) => m.id === second.messageId);
    expect(w.emulator.retryReceiptsSent(PEER)).toBe(1);
  });
});
