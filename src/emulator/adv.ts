/**
 * The "account device verification" (ADV) objects the phone signs when it links a companion,
 * and the check of the companion's counter-signature. Prefixes 06 00 / 06 01 are WhatsApp's
 * domain separators for account and device signatures.
 */
import { createHmac, randomInt } from 'node:crypto';
import { proto } from '@whiskeysockets/baileys';
import { type KeyPair, sign, verifyStrict } from './curve.js';

const ACCOUNT_SIGNATURE_PREFIX = Buffer.from([6, 0]);
const DEVICE_SIGNATURE_PREFIX = Buffer.from([6, 1]);

/** What the phone sends in `<pair-success><device-identity>`, and the details it signed. */
export interface SignedDeviceIdentity {
  /** Encoded ADVSignedDeviceIdentityHMAC (the node content). */
  container: Buffer;
  /** Encoded ADVDeviceIdentity (what both signatures cover). */
  details: Buffer;
}

/**
 * Builds the identity for companion `keyIndex`, signed with the phone's identity key and
 * authenticated with the companion's ADV secret (from the QR code or the pairing-code exchange).
 */
export function signDeviceIdentity(
  phoneIdentity: KeyPair,
  companionIdentity: Buffer,
  keyIndex: number,
  advSecret: Buffer,
): SignedDeviceIdentity {
  const details = Buffer.from(
    proto.ADVDeviceIdentity.encode({
      rawId: randomInt(1, 0x7fffffff),
      timestamp: Math.floor(Date.now() / 1000),
      keyIndex,
      accountType: proto.ADVEncryptionType.E2EE,
      deviceType: proto.ADVEncryptionType.E2EE,
    }).finish(),
  );
  const accountSignature = sign(phoneIdentity.private, Buffer.concat([ACCOUNT_SIGNATURE_PREFIX, details, companionIdentity]));
  const signed = Buffer.from(
    proto.ADVSignedDeviceIdentity.encode({ details, accountSignatureKey: phoneIdentity.public, accountSignature }).finish(),
  );
  const hmac = createHmac('sha256', advSecret).update(signed).digest();
  const container = Buffer.from(proto.ADVSignedDeviceIdentityHMAC.encode({ details: signed, hmac }).finish());
  return { container, details };
}

/**
 * Checks the companion's `<pair-device-sign>` identity: same details as we issued, and a
 * device signature over (06 01 ‖ details ‖ companion identity ‖ phone identity) that verifies
 * strictly under the companion's identity key. Returns why it is bad, or null.
 */
export function checkDeviceSignature(
  signedByCompanion: Uint8Array,
  issuedDetails: Buffer,
  companionIdentity: Buffer,
  phoneIdentityPublic: Buffer,
): string | null {
  const identity = proto.ADVSignedDeviceIdentity.decode(signedByCompanion);
  if (!identity.details || !Buffer.from(identity.details).equals(issuedDetails)) return 'details differ from what the phone issued';
  if (!identity.deviceSignature) return 'no device signature';
  const message = Buffer.concat([DEVICE_SIGNATURE_PREFIX, issuedDetails, companionIdentity, phoneIdentityPublic]);
  return verifyStrict(companionIdentity, message, identity.deviceSignature) ? null : 'device signature does not verify';
}
