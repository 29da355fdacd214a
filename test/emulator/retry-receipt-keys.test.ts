// The keys a client's retry receipt carries, read as a prekey bundle; a peer that starts a new
// session from them sends a pkmsg the asking device can decrypt, where its old session's copy fails.
import { describe, expect, it } from 'vitest';
import { encodeBigEndian, xmppPreKey, xmppSignedPreKey, type BinaryNode } from '@whiskeysockets/baileys';
import { retryReceiptBundle } from '../../src/emulator/inbound-retry.js';
import { SimDevice, type PreKeyBundle } from '../../src/emulator/sim-device.js';

type Spoil = 'skey' | 'identity' | 'registration' | 'type' | 'short-key' | 'bad-key';

/** A retry receipt as Baileys builds it (its own node builders), optionally spoilt. */
function receipt(bundle: PreKeyBundle, spoil?: Spoil): BinaryNode {
  const none = Buffer.alloc(32);
  const preKey = xmppPreKey({ public: spoil === 'short-key' ? bundle.preKey!.publicKey.subarray(1) : bundle.preKey!.publicKey, private: none }, bundle.preKey!.keyId);
  if (spoil === 'bad-key') preKey.content = [];
  const keys: BinaryNode[] = [
    { tag: 'type', attrs: {}, content: Buffer.from([spoil === 'type' ? 6 : 5]) },
    { tag: 'identity', attrs: {}, content: bundle.identityKey },
    preKey,
    xmppSignedPreKey({ keyId: bundle.signedPreKey.keyId, keyPair: { public: bundle.signedPreKey.publicKey, private: none }, signature: bundle.signedPreKey.signature }),
  ].filter((k) => k.tag !== spoil);
  return {
    tag: 'receipt',
    attrs: { id: 'M1', type: 'retry' },
    content: [
      { tag: 'retry', attrs: { count: '2', id: 'M1', v: '1' } },
      ...(spoil === 'registration' ? [] : [{ tag: 'registration', attrs: {}, content: encodeBigEndian(bundle.registrationId) }]),
      { tag: 'keys', attrs: {}, content: keys },
    ],
  };
}

describe('a retry receipt with keys', () => {
  it('reads as the asking device’s bundle; none without keys, with a part missing or spoilt', () => {
    const asking = new SimDevice();
    const bundle = asking.bundle();
    expect(retryReceiptBundle(receipt(bundle))).toEqual(bundle);
    expect(retryReceiptBundle({ tag: 'receipt', attrs: { type: 'retry' }, content: [{ tag: 'retry', attrs: { count: '1' } }] })).toBeUndefined();
    for (const spoil of ['skey', 'identity', 'registration', 'type', 'short-key', 'bad-key'] as const) expect(retryReceiptBundle(receipt(bundle, spoil)), spoil).toBeUndefined();
  });

  it('keys whose signature does not verify start nothing: the open session stays and still reaches the device', async () => {
    const peer = new SimDevice();
    const device = new SimDevice();
    const first = await peer.encrypt('acct.1', Buffer.from('hello'), () => device.bundle());
    expect((await device.decrypt('peer.0', first.type, first.ciphertext)).toString()).toBe('hello');
    const forged = device.bundle();
    forged.signedPreKey = { ...forged.signedPreKey, signature: Buffer.alloc(64, 1) };
    await expect(peer.startSession('acct.1', retryReceiptBundle(receipt(forged))!)).rejects.toThrow();
    const next = await peer.encrypt('acct.1', Buffer.from('still here'), () => {
      throw new Error('the open session is used');
    });
    expect((await device.decrypt('peer.0', next.type, next.ciphertext)).toString()).toBe('still here');
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
