// The delivery receipt waits for an asynchronous commit (a shared PostgreSQL inbox): the wrapped
// decryption, which Baileys awaits before it sends the receipt, returns only once the commit the
// inbound listener handed over has settled, and fails when that commit fails (Baileys then sends
// a retry receipt instead, and the Signal session's transaction rolls back).
import { proto } from '@whiskeysockets/baileys';
import { describe, expect, it } from 'vitest';
import { InboundCapture } from '../../src/wa/inbound-capture.js';

const ME = '15550009999:1@s.whatsapp.net';
const PEER = '15550001111@s.whatsapp.net';

function capturing(emit: () => void | Promise<void>): { decrypt: () => Promise<Uint8Array> } {
  const capture = new InboundCapture({ emit, me: () => ({ id: ME }) });
  const ciphertext = new Uint8Array([7, 7, 7]);
  capture.onStanza({
    tag: 'message',
    attrs: { id: 'ASYNC1', from: PEER, t: '1700000000', type: 'text' },
    content: [{ tag: 'enc', attrs: { type: 'msg', v: '2' }, content: ciphertext }],
  } as never);
  const plain = proto.Message.encode({ conversation: 'hello' }).finish();
  const padded = new Uint8Array([...plain, 1]);
  const repo = capture.wrap({ decryptMessage: async () => padded } as never, { get: async () => ({}), set: async () => {} } as never);
  return { decrypt: () => repo.decryptMessage({ jid: PEER, type: 'msg', ciphertext }) };
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
