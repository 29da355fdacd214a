// The delivery receipt waits for an asynchronous commit (a shared PostgreSQL inbox): the wrapped
// decryption, which Baileys awaits before it sends the receipt, returns only once the commit the
// inbound listener handed over has settled, and fails when that commit fails (Baileys then sends
// a retry receipt instead, and the Signal session's transaction rolls back).
import { MISSING_KEYS_ERROR_TEXT, proto, type BinaryNode } from '@whiskeysockets/baileys';
import { describe, expect, it } from 'vitest';
import { InboundCapture } from '../../src/wa/inbound-capture.js';
import type { InboundMessage } from '../../src/wa/types.js';

const ME = '15550009999:1@s.whatsapp.net';
const PEER = '15550001111@s.whatsapp.net';

function capturing(
  emit: (m: InboundMessage) => void | Promise<void>,
  opts: { fail?: Error; askAgain?: (node: BinaryNode) => void } = {},
): { decrypt: () => Promise<Uint8Array>; stanza: BinaryNode } {
  const capture = new InboundCapture({ emit, me: () => ({ id: ME }), askAgain: opts.askAgain ?? (() => undefined) });
  const ciphertext = new Uint8Array([7, 7, 7]);
  const stanza: BinaryNode = {
    tag: 'message',
    attrs: { id: 'ASYNC1', from: PEER, t: '1700000000', type: 'text' },
    content: [{ tag: 'enc', attrs: { type: 'msg', v: '2' }, content: ciphertext }],
  };
  capture.onStanza(stanza);
  const plain = proto.Message.encode({ conversation: 'hello' }).finish();
  const padded = new Uint8Array([...plain, 1]);
  const decryptMessage = async () => {
    if (opts.fail) throw opts.fail;
    return padded;
  };
  const repo = capture.wrap({ decryptMessage } as never, { get: async () => ({}), set: async () => {} } as never);
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
  it('is kept as undecryptable, and its sender is asked for it again once the failed decryption is over', async () => {
    const kept: InboundMessage[] = [];
    const asked: BinaryNode[] = [];
    const { decrypt, stanza } = capturing((m) => void kept.push(m), { fail: new Error(MISSING_KEYS_ERROR_TEXT), askAgain: (node) => asked.push(node) });
    await expect(decrypt()).rejects.toThrow(MISSING_KEYS_ERROR_TEXT);
    expect(kept.map((m) => [m.id, m.kind])).toEqual([['ASYNC1', 'undecryptable']]);
    expect(asked).toEqual([]); // not inside the key-store transaction that is rolling back
    await new Promise((r) => setImmediate(r));
    expect(asked).toEqual([stanza]);
  });

  it('any other failure is left to Baileys, which sends its own retry receipt', async () => {
    const asked: BinaryNode[] = [];
    const { decrypt } = capturing(() => undefined, { fail: new Error('Bad MAC'), askAgain: (node) => asked.push(node) });
    await expect(decrypt()).rejects.toThrow('Bad MAC');
    await new Promise((r) => setImmediate(r));
    expect(asked).toEqual([]);
  });
});
