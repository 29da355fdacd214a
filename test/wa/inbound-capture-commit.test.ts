// The delivery receipt waits for an asynchronous commit (a shared PostgreSQL inbox): the wrapped
// decryption, which Baileys awaits before it sends the receipt, returns only once the commit the
// inbound listener handed over has settled, and fails when that commit fails (Baileys then sends
// a retry receipt instead, and the Signal session's transaction rolls back).
import { MISSING_KEYS_ERROR_TEXT, addTransactionCapability, proto, type BinaryNode } from '@whiskeysockets/baileys';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { InboundCapture } from '../../src/wa/inbound-capture.js';
import type { InboundMessage } from '../../src/wa/types.js';

const ME = '15550009999:1@s.whatsapp.net';
const PEER = '15550001111@s.whatsapp.net';

/** A key store with Baileys' own transactions, as makeSignalRepository is handed one. */
const keys = addTransactionCapability({ get: async () => ({}), set: async () => {} }, pino({ level: 'silent' }), { maxCommitRetries: 1, delayBetweenTriesMs: 1 });

function capturing(
  emit: (m: InboundMessage) => void | Promise<void>,
  opts: { fail?: Error; askAgain?: (node: BinaryNode) => void; group?: boolean } = {},
): { decrypt: () => Promise<Uint8Array>; stanza: BinaryNode } {
  const capture = new InboundCapture({ emit, me: () => ({ id: ME }), askAgain: opts.askAgain ?? (() => undefined) });
  const ciphertext = new Uint8Array([7, 7, 7]);
  const stanza: BinaryNode = {
    tag: 'message',
    attrs: { id: 'ASYNC1', from: PEER, t: '1700000000', type: 'text' },
    content: [
      { tag: 'enc', attrs: { type: 'msg', v: '2' }, content: ciphertext },
      ...(opts.group ? [{ tag: 'enc', attrs: { type: 'skmsg', v: '2' }, content: new Uint8Array([8]) }] : []),
    ],
  };
  capture.onStanza(stanza);
  const plain = proto.Message.encode({ conversation: 'hello' }).finish();
  const padded = new Uint8Array([...plain, 1]);
  const decryptMessage = async () => {
    if (opts.fail) throw opts.fail;
    return padded;
  };
  const repo = capture.wrap({ decryptMessage } as never, keys);
  return { decrypt: () => repo.decryptMessage({ jid: PEER, type: 'msg', ciphertext }), stanza };
}

describe('inbound capture with an asynchronous commit', () => {
  it('the decryption (and so the receipt) waits for the commit to settle', async () => {
    let commit!: () => void;
    const { decrypt } = capturing(() => new Promise<void>((r) => (commit = r)));
    let returned = false;
    const decrypting = decrypt().then(() => (returned = true));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(returned).toBe(false); // still committing
    commit();
    await decrypting;
    expect(returned).toBe(true);
  });

  it('a commit that fails fails the decryption: no receipt for a message that was not kept', async () => {
    const { decrypt } = capturing(() => Promise.reject(new Error('account main: this daemon does not hold its lease')));
    await expect(decrypt()).rejects.toThrow(/does not hold its lease/);
  });
});

describe('a copy whose message key was already used', () => {
  it('is kept as undecryptable, and its sender is asked for it again once, after the failed decryption and outside its transaction', async () => {
    const kept: InboundMessage[] = [];
    const asked: Array<{ node: BinaryNode; inTransaction: boolean }> = [];
    const { decrypt, stanza } = capturing((m) => void kept.push(m), { fail: new Error(MISSING_KEYS_ERROR_TEXT), askAgain: (node) => asked.push({ node, inTransaction: keys.isInTransaction() }) });
    await expect(decrypt()).rejects.toThrow(MISSING_KEYS_ERROR_TEXT);
    expect(kept.map((m) => [m.id, m.kind])).toEqual([['ASYNC1', 'undecryptable']]);
    expect(asked).toEqual([]); // not while the transaction is rolling back
    await new Promise((r) => setImmediate(r));
    // Its writes (a later receipt's prekey) are its own, not the rolled-back transaction's.
    expect(asked).toEqual([{ node: stanza, inTransaction: false }]);
    await expect(decrypt()).rejects.toThrow(MISSING_KEYS_ERROR_TEXT); // the same stanza failing again
    await new Promise((r) => setImmediate(r));
    expect(asked).toHaveLength(1);
  });

  it('a commit that fails still asks; a group stanza is left to Baileys, which asks for its failed part itself', async () => {
    const asked: BinaryNode[] = [];
    const failing = capturing(() => Promise.reject(new Error('disk full')), { fail: new Error(MISSING_KEYS_ERROR_TEXT), askAgain: (node) => asked.push(node) });
    await expect(failing.decrypt()).rejects.toThrow('disk full');
    await new Promise((r) => setImmediate(r));
    expect(asked).toEqual([failing.stanza]);
    const group = capturing(() => undefined, { fail: new Error(MISSING_KEYS_ERROR_TEXT), askAgain: (node) => asked.push(node), group: true });
    await expect(group.decrypt()).rejects.toThrow(MISSING_KEYS_ERROR_TEXT);
    await new Promise((r) => setImmediate(r));
    expect(asked).toEqual([failing.stanza]);
  });

  it('any other failure is left to Baileys, which sends its own retry receipt', async () => {
    const asked: BinaryNode[] = [];
    const { decrypt } = capturing(() => undefined, { fail: new Error('Bad MAC'), askAgain: (node) => asked.push(node) });
    await expect(decrypt()).rejects.toThrow('Bad MAC');
    await new Promise((r) => setImmediate(r));
    expect(asked).toEqual([]);
  });
});
