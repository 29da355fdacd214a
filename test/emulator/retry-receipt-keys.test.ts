// The keys a client's retry receipt carries, read as a prekey bundle; a peer that starts a new
// session from them sends a pkmsg the asking device can decrypt, where its old session's copy fails.
import { describe, expect, it } from 'vitest';
import type { BinaryNode } from '@whiskeysockets/baileys';
import { retryReceiptBundle } from '../../src/emulator/inbound-retry.js';
import { SimDevice, type PreKeyBundle } from '../../src/emulator/sim-device.js';
import { uintBytes } from '../../src/emulator/stanza.js';

function receipt(bundle: PreKeyBundle, drop?: 'skey' | 'identity' | 'registration'): BinaryNode {
  const keys: BinaryNode[] = [
    { tag: 'type', attrs: {}, content: Buffer.from([5]) },
    { tag: 'identity', attrs: {}, content: bundle.identityKey },
    { tag: 'key', attrs: {}, content: [{ tag: 'id', attrs: {}, content: uintBytes(bundle.preKey!.keyId, 3) }, { tag: 'value', attrs: {}, content: bundle.preKey!.publicKey }] },
    {
      tag: 'skey',
      attrs: {},
      content: [
        { tag: 'id', attrs: {}, content: uintBytes(bundle.signedPreKey.keyId, 3) },
        { tag: 'value', attrs: {}, content: bundle.signedPreKey.publicKey },
        { tag: 'signature', attrs: {}, content: bundle.signedPreKey.signature },
      ],
    },
  ].filter((k) => k.tag !== drop);
  return {
    tag: 'receipt',
    attrs: { id: 'M1', type: 'retry' },
    content: [
      { tag: 'retry', attrs: { count: '2', id: 'M1', v: '1' } },
      ...(drop === 'registration' ? [] : [{ tag: 'registration', attrs: {}, content: uintBytes(bundle.registrationId, 4) }]),
      { tag: 'keys', attrs: {}, content: keys },
    ],
  };
}

describe('a retry receipt with keys', () => {
  it('reads as the asking device’s bundle; none without keys or with a part missing', () => {
    const asking = new SimDevice();
    const bundle = asking.bundle();
    expect(retryReceiptBundle(receipt(bundle))).toEqual(bundle);
    expect(retryReceiptBundle({ tag: 'receipt', attrs: { type: 'retry' }, content: [{ tag: 'retry', attrs: { count: '1' } }] })).toBeUndefined();
    for (const drop of ['skey', 'identity', 'registration'] as const) expect(retryReceiptBundle(receipt(bundle, drop))).toBeUndefined();
  });

  it('a session started from it reaches a device that lost the old one', async () => {
    const peer = new SimDevice();
    const before = new SimDevice();
    const first = await peer.encrypt('acct.1', Buffer.from('hello'), () => before.bundle());
    expect(first.type).toBe('pkmsg');
    expect((await before.decrypt('peer.0', first.type, first.ciphertext)).toString()).toBe('hello');
    // The device lost its session (here: a new device under the same address).
    const after = new SimDevice();
    const stale = await peer.encrypt('acct.1', Buffer.from('lost'), () => after.bundle());
    await expect(after.decrypt('peer.0', stale.type, stale.ciphertext)).rejects.toThrow();
    await peer.startSession('acct.1', retryReceiptBundle(receipt(after.bundle()))!);
    const fresh = await peer.encrypt('acct.1', Buffer.from('found'), () => {
      throw new Error('the session was started from the receipt');
    });
    expect(fresh.type).toBe('pkmsg');
    expect((await after.decrypt('peer.0', fresh.type, fresh.ciphertext)).toString()).toBe('found');
  });
});
