/**
 * `xmlns="encrypt"` iqs: prekey count, prekey upload, key-bundle digest, signed-prekey
 * rotation, and prekey bundles for the devices a client wants to start sessions with.
 */
import type { BinaryNode } from '@whiskeysockets/baileys';
import { accountOf } from './account-of.js';
import { SIGNAL_KEY_TYPE } from './curve.js';
import type { EmulatorCore } from './core.js';
import type { Session } from './session.js';
import type { PreKeyBundle } from './sim-device.js';
import { child, childBytes, children, firstChildTag, iqError, iqResult, readUInt, uintBytes } from './stanza.js';

const KEY_TYPE = Buffer.from([SIGNAL_KEY_TYPE]);

/** Answers an encrypt iq. */
export function encryptIq(core: EmulatorCore, session: Session, iq: BinaryNode): BinaryNode {
  const op = firstChildTag(iq);
  if (op === 'key') return keyBundles(core, iq);
  const account = accountOf(core, session);
  if (!account) return iqError(iq, 401, 'not-authorized');
  const { companion } = account;
  switch (op) {
    case 'count':
      return iqResult(iq, [{ tag: 'count', attrs: { value: String(companion.preKeys.size) } }]);
    case 'registration': {
      for (const key of children(child(iq, 'list'), 'key')) {
        const id = readUInt(childBytes(key, 'id'));
        const value = childBytes(key, 'value');
        if (id !== undefined && value) companion.preKeys.set(id, value);
      }
      const signed = parseSignedPreKey(child(iq, 'skey'));
      if (signed) companion.signedPreKey = signed;
      session.event(`prekeys uploaded; server now holds ${companion.preKeys.size}`);
      return iqResult(iq);
    }
    case 'digest':
      return iqResult(iq, [{ tag: 'digest', attrs: {} }]);
    case 'rotate': {
      const signed = parseSignedPreKey(child(child(iq, 'rotate'), 'skey'));
      if (!signed) return iqError(iq, 400, 'bad-request');
      companion.signedPreKey = signed;
      return iqResult(iq);
    }
    default:
      return iqResult(iq);
  }
}

export function parseSignedPreKey(skey: BinaryNode | undefined): { keyId: number; publicKey: Buffer; signature: Buffer } | undefined {
  const keyId = readUInt(childBytes(skey, 'id'));
  const publicKey = childBytes(skey, 'value');
  const signature = childBytes(skey, 'signature');
  return keyId !== undefined && publicKey && signature ? { keyId, publicKey, signature } : undefined;
}

/** `<key><user jid/>…</key>`: one bundle per requested device, or a 404 for unknown ones. */
function keyBundles(core: EmulatorCore, iq: BinaryNode): BinaryNode {
  const users = children(child(iq, 'key'), 'user').map((request): BinaryNode => {
    const jid = request.attrs.jid ?? '';
    const ref = core.world.resolve(jid);
    let bundle: PreKeyBundle | undefined;
    if (ref?.device === 0) bundle = ref.user.phoneDevice.bundle();
    else if (ref) bundle = ref.user.companions.get(ref.device)?.bundle();
    if (!bundle) return { tag: 'user', attrs: { jid }, content: [{ tag: 'error', attrs: { code: '404', text: 'item-not-found' } }] };
    return { tag: 'user', attrs: { jid }, content: bundleContent(bundle) };
  });
  return iqResult(iq, [{ tag: 'list', attrs: {}, content: users }]);
}

function bundleContent(bundle: PreKeyBundle): BinaryNode[] {
  const content: BinaryNode[] = [
    { tag: 'registration', attrs: {}, content: uintBytes(bundle.registrationId, 4) },
    { tag: 'type', attrs: {}, content: KEY_TYPE },
    { tag: 'identity', attrs: {}, content: bundle.identityKey },
    {
      tag: 'skey',
      attrs: {},
      content: [
        { tag: 'id', attrs: {}, content: uintBytes(bundle.signedPreKey.keyId, 3) },
        { tag: 'value', attrs: {}, content: bundle.signedPreKey.publicKey },
        { tag: 'signature', attrs: {}, content: bundle.signedPreKey.signature },
      ],
    },
  ];
  if (bundle.preKey) {
    content.push({
      tag: 'key',
      attrs: {},
      content: [
        { tag: 'id', attrs: {}, content: uintBytes(bundle.preKey.keyId, 3) },
        { tag: 'value', attrs: {}, content: bundle.preKey.publicKey },
      ],
    });
  }
  return content;
}
