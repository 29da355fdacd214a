/**
 * The test CA behind the emulator's HTTPS media server. Its Ed25519 key is derived from the PKI
 * root seed, and its certificate has fixed fields (Ed25519 signatures are deterministic), so the
 * same seed always gives the same CA PEM: the vitest setup file can trust an emulator's CA
 * before the emulator exists. Each emulator issues its own server certificate from it.
 */
import { type KeyObject, createHash, createHmac, createPrivateKey, createPublicKey, randomBytes, sign } from 'node:crypto';
import { isIP } from 'node:net';
import { bitString, boolean, explicit, implicit, octetString, oid, sequence, set, smallInteger, time, unsignedInteger, utf8String } from './der.js';
import { defaultRootSeed } from './root-seed.js';

const CA_LABEL = 'wa-supervisor/emulator/media-ca/v1';
const CA_NAME = 'wa-supervisor emulator media test CA';
const CA_NOT_BEFORE = new Date('2024-01-01T00:00:00Z');
const CA_NOT_AFTER = new Date('2049-12-31T23:59:59Z');
const SERVER_DAYS = 30;

/** PKCS#8 prefix of an Ed25519 private key; the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const ED25519 = () => sequence(oid('1.3.101.112'));

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyId: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyId: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
};

/** A PEM certificate and the private key that goes with it. */
export interface ServerCredentials {
  cert: string;
  key: string;
}

function ed25519FromSeed(seed: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

function name(commonName: string): Buffer {
  const rdn = (type: string, value: string) => set(sequence(oid(type), utf8String(value)));
  return sequence(rdn(OID.organization, 'wa-supervisor (test only)'), rdn(OID.commonName, commonName));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
}

/** RFC 5280's key identifier: SHA-1 of the subjectPublicKey bits. */
function keyId(spki: Buffer): Buffer {
  return createHash('sha1').update(spki.subarray(12)).digest(); // Ed25519 SPKI: 12-byte header, 32-byte key
}

function toPem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

interface CertFields {
  serial: Buffer;
  issuer: Buffer;
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  extensions: Buffer[];
  signer: KeyObject;
}

function certificate(f: CertFields): string {
  const tbs = sequence(
    explicit(0, smallInteger(2)), // v3
    unsignedInteger(f.serial),
    ED25519(),
    f.issuer,
    sequence(time(f.notBefore), time(f.notAfter)),
    f.subject,
    f.spki,
    explicit(3, sequence(...f.extensions)),
  );
  return toPem(sequence(tbs, ED25519(), bitString(sign(null, tbs, f.signer))));
}

/** A 16-byte positive serial number. */
function serialFrom(bytes: Buffer): Buffer {
  const serial = Buffer.from(bytes.subarray(0, 16));
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  return serial;
}

/** The emulator's media CA: a self-signed Ed25519 root that issues server certificates. */
export class MediaCa {
  /** The CA certificate (PEM) a client must trust. */
  readonly pem: string;
  private readonly key: KeyObject;
  private readonly spki: Buffer;

  constructor(rootSeed: Buffer = defaultRootSeed()) {
    const seed = createHmac('sha256', rootSeed).update(CA_LABEL).digest();
    this.key = ed25519FromSeed(seed);
    this.spki = createPublicKey(this.key).export({ type: 'spki', format: 'der' });
    this.pem = certificate({
      serial: serialFrom(createHash('sha256').update(seed).update('serial').digest()),
      issuer: name(CA_NAME),
      subject: name(CA_NAME),
      notBefore: CA_NOT_BEFORE,
      notAfter: CA_NOT_AFTER,
      spki: this.spki,
      extensions: [
        extension(OID.basicConstraints, true, sequence(boolean(true))),
        extension(OID.keyUsage, true, bitString(Buffer.from([0x06]), 1)), // keyCertSign, cRLSign
        extension(OID.subjectKeyId, false, octetString(keyId(this.spki))),
      ],
      signer: this.key,
    });
  }

  /** A fresh key and a certificate for these host names and IP addresses, valid for 30 days. */
  issueServer(hosts: string[]): ServerCredentials {
    const key = ed25519FromSeed(randomBytes(32));
    const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
    const names = [...new Set(hosts)].filter((host) => !(isIP(host) === 6 && host.includes('.'))).map((host) => (isIP(host) ? implicit(7, ipBytes(host)) : implicit(2, Buffer.from(host, 'ascii'))));
    const now = Date.now();
    const cert = certificate({
      serial: serialFrom(randomBytes(16)),
      issuer: name(CA_NAME),
      subject: name(hosts[0] ?? 'localhost'),
      notBefore: new Date(now - 3600_000),
      notAfter: new Date(now + SERVER_DAYS * 86400_000),
      spki,
      extensions: [
        extension(OID.basicConstraints, true, sequence()),
        extension(OID.keyUsage, true, bitString(Buffer.from([0x80]), 7)), // digitalSignature
        extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth))),
        extension(OID.subjectAltName, false, sequence(...names)),
        extension(OID.subjectKeyId, false, octetString(keyId(spki))),
        extension(OID.authorityKeyId, false, sequence(implicit(0, keyId(this.spki)))),
      ],
      signer: this.key,
    });
    return { cert, key: key.export({ type: 'pkcs8', format: 'pem' }) as string };
  }
}

/** The CA PEM of the default test root seed (what the vitest setup file trusts). */
export function defaultMediaCaPem(): string {
  return new MediaCa().pem;
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const [head = '', tail = ''] = ip.split('::');
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = groups(tail);
  const all = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return Buffer.concat(all.map((g) => Buffer.from(g.padStart(4, '0'), 'hex')));
}
