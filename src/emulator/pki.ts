/**
 * The emulator's certificate chain: root -> intermediate -> leaf (the Noise static key).
 *
 * Baileys checks the intermediate against `WA_CERT_DETAILS.PUBLIC_KEY` and requires the
 * intermediate's issuerSerial to be 0, so that is what we issue. The root is derived from a
 * 32-byte seed, so every emulator built from the same seed has the same root; that is how the
 * vitest setup file can trust an emulator that does not exist yet (see docs/emulator.md).
 * Intermediate and leaf keys are random per emulator.
 */
import { randomInt } from 'node:crypto';
import { proto } from '@whiskeysockets/baileys';
import { type KeyPair, generateKeyPair, keyPairFromPrivate, sign, verifyStrict } from './curve.js';
import { defaultRootSeed } from './root-seed.js';

export { defaultRootSeed };

/** Serial Baileys requires on the intermediate's issuer (its `WA_CERT_DETAILS.SERIAL`). */
export const ROOT_SERIAL = 0;

const YEAR_S = 365 * 24 * 3600;

/** The public key of the default test root (what the vitest setup file trusts). */
export function defaultRootPublicKey(): Buffer {
  return keyPairFromPrivate(defaultRootSeed()).public;
}

/** A root and intermediate that issue leaf certificates for Noise static keys. */
export class EmulatorPki {
  /** The root key pair; its public half is what clients must trust. */
  readonly root: KeyPair;
  private readonly intermediate: KeyPair;
  private readonly intermediateSerial: number;
  private readonly intermediateCert: proto.CertChain.INoiseCertificate;

  constructor(rootSeed: Buffer = defaultRootSeed()) {
    this.root = keyPairFromPrivate(rootSeed);
    this.intermediate = generateKeyPair();
    this.intermediateSerial = randomInt(1, 0x7fffffff);
    const details = encodeDetails(this.intermediateSerial, ROOT_SERIAL, this.intermediate.public);
    this.intermediateCert = { details, signature: sign(this.root.private, details) };
  }

  /** The root public key as 64 hex characters (the form `WA_EMULATOR_ROOT` takes). */
  get rootPublicKeyHex(): string {
    return this.root.public.toString('hex');
  }

  /** An encoded `CertChain` whose leaf certifies `staticPublicKey`. */
  certChainFor(staticPublicKey: Buffer): Buffer {
    const details = encodeDetails(randomInt(1, 0x7fffffff), this.intermediateSerial, staticPublicKey);
    const leaf = { details, signature: sign(this.intermediate.private, details) };
    return Buffer.from(proto.CertChain.encode({ leaf, intermediate: this.intermediateCert }).finish());
  }
}

function encodeDetails(serial: number, issuerSerial: number, key: Buffer): Buffer {
  const now = Math.floor(Date.now() / 1000);
  return Buffer.from(
    proto.CertChain.NoiseCertificate.Details.encode({
      serial,
      issuerSerial,
      key,
      notBefore: now - 3600,
      notAfter: now + YEAR_S,
    }).finish(),
  );
}

/** Why a certificate chain failed strict verification, or null when it is sound. */
export function verifyCertChain(chain: Uint8Array, rootPublicKey: Uint8Array, staticPublicKey: Uint8Array): string | null {
  const { leaf, intermediate } = proto.CertChain.decode(chain);
  if (!leaf?.details || !leaf.signature || !intermediate?.details || !intermediate.signature) return 'incomplete chain';
  const inter = proto.CertChain.NoiseCertificate.Details.decode(intermediate.details);
  const leafDetails = proto.CertChain.NoiseCertificate.Details.decode(leaf.details);
  if (inter.issuerSerial !== ROOT_SERIAL) return `intermediate issuerSerial ${inter.issuerSerial} != ${ROOT_SERIAL}`;
  if (!verifyStrict(rootPublicKey, intermediate.details, intermediate.signature)) return 'intermediate not signed by root';
  if (!inter.key || !verifyStrict(inter.key, leaf.details, leaf.signature)) return 'leaf not signed by intermediate';
  if (leafDetails.issuerSerial !== inter.serial) return 'leaf issuerSerial does not name the intermediate';
  if (!leafDetails.key || !Buffer.from(leafDetails.key).equals(Buffer.from(staticPublicKey))) return 'leaf key is not the static key';
  return null;
}
