/**
 * Pairing-code login (`link_code_companion_reg`), with the emulator as the phone on which the
 * user types the 8-character code. The code only ever protects the two ephemeral keys (PBKDF2
 * + AES-CTR); a wrong code shows up as a key bundle that fails AES-GCM authentication. The
 * ADV secret both sides derive then authenticates `pair-success` as in QR pairing.
 */
import { createDecipheriv, createCipheriv, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { type BinaryNode, jidDecode } from '@whiskeysockets/baileys';
import type { EmulatorCore } from './core.js';
import { generateKeyPair, sharedKey } from './curve.js';
import { EmulatorError } from './errors.js';
import { hkdf } from './kdf.js';
import { type PairResult, completePairing, registrationOf } from './pairing.js';
import type { CodeRequest } from './pairing-book.js';
import type { Session } from './session.js';
import { SERVER_JID, child, childBytes, iqError, iqResult } from './stanza.js';

const pbkdf2Async = promisify(pbkdf2);
/** Iterations WhatsApp uses to stretch the pairing code (2 << 16). */
const CODE_ITERATIONS = 2 << 16;
const FINISH_TIMEOUT_MS = 10_000;
/** How long a typed code waits for the client's request to arrive (see PairingBook). */
const CODE_REQUEST_WAIT_MS = 2_000;

async function codeKey(code: string, salt: Buffer): Promise<Buffer> {
  return pbkdf2Async(Buffer.from(code, 'utf8'), salt, CODE_ITERATIONS, 32, 'sha256');
}

/** Decrypts salt(32) ‖ iv(16) ‖ AES-256-CTR(key) with the code. */
async function unwrapKey(code: string, wrapped: Buffer): Promise<Buffer> {
  const key = await codeKey(code, wrapped.subarray(0, 32));
  const decipher = createDecipheriv('aes-256-ctr', key, wrapped.subarray(32, 48));
  return Buffer.concat([decipher.update(wrapped.subarray(48, 80)), decipher.final()]);
}

/** The inverse of unwrapKey, with a fresh salt and iv. */
async function wrapKey(code: string, publicKey: Buffer): Promise<Buffer> {
  const salt = randomBytes(32);
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-ctr', await codeKey(code, salt), iv);
  return Buffer.concat([salt, iv, cipher.update(publicKey), cipher.final()]);
}

/** Normalises a code as a user might type it ("abcd-efgh" -> "ABCDEFGH"). */
function normaliseCode(code: string): string {
  return code.replace(/[\s-]/g, '').toUpperCase();
}

/** Handles `link_code_companion_reg` iqs: companion_hello opens a request, companion_finish completes it. */
export function onLinkCodeIq(core: EmulatorCore, session: Session, iq: BinaryNode): BinaryNode | null {
  const reg = child(iq, 'link_code_companion_reg');
  const stage = reg?.attrs.stage;
  if (stage === 'companion_hello') return companionHello(core, session, iq, reg!);
  if (stage === 'companion_finish') {
    const request = [...core.pairing.codeRequests.values()].find((r) => r.session === session.id);
    if (!request) return iqError(iq, 404, 'item-not-found');
    request.resolveFinish(iq);
    return null; // answered by enterPairingCode once the bundle checks out
  }
  return iqError(iq, 400, 'bad-request');
}

function companionHello(core: EmulatorCore, session: Session, iq: BinaryNode, reg: BinaryNode): BinaryNode {
  const phone = jidDecode(reg.attrs.jid)?.user;
  const wrapped = childBytes(reg, 'link_code_pairing_wrapped_companion_ephemeral_pub');
  if (session.state !== 'registering' || !phone || !wrapped || wrapped.length < 80) return iqError(iq, 400, 'bad-request');
  const ref = randomBytes(12).toString('base64url');
  let resolveFinish: (node: BinaryNode) => void = () => {};
  const finish = new Promise<BinaryNode>((resolve) => {
    resolveFinish = resolve;
  });
  const request: CodeRequest = { session: session.id, phone, ref, wrappedCompanionEphemeral: wrapped, finish, resolveFinish };
  core.pairing.addCodeRequest(request);
  session.event(`pairing code requested for ${phone}`);
  return iqResult(iq, [
    { tag: 'link_code_companion_reg', attrs: {}, content: [{ tag: 'link_code_pairing_ref', attrs: {}, content: Buffer.from(ref) }] },
  ]);
}

/** The user types `code` on `phone`'s phone: runs the key exchange and pairs the waiting client. */
export async function enterPairingCode(core: EmulatorCore, rawCode: string, phone: string): Promise<PairResult> {
  const code = normaliseCode(rawCode);
  const request = await core.pairing.waitForCodeRequest(phone, CODE_REQUEST_WAIT_MS);
  const session = request ? core.sessions.byId(request.session) : undefined;
  if (!request || !session) {
    throw new EmulatorError(404, 'no_code_request', `phone: no client asked for a pairing code for ${phone}`, 'phone');
  }
  const registration = registrationOf(core, session);
  const user = core.world.ensureUser(phone);
  const companionEphemeral = await unwrapKey(code, request.wrappedCompanionEphemeral);
  const primaryEphemeral = generateKeyPair();
  session.send({
    tag: 'notification',
    attrs: { from: SERVER_JID, type: 'link_code_companion_reg', id: randomBytes(8).toString('hex'), t: String(Math.floor(Date.now() / 1000)) },
    content: [
      {
        tag: 'link_code_companion_reg',
        attrs: { stage: 'primary_hello' },
        content: [
          { tag: 'link_code_pairing_ref', attrs: {}, content: Buffer.from(request.ref) },
          { tag: 'primary_identity_pub', attrs: {}, content: user.phoneDevice.identity.public },
          { tag: 'link_code_pairing_wrapped_primary_ephemeral_pub', attrs: {}, content: await wrapKey(code, primaryEphemeral.public) },
        ],
      },
    ],
  });
  const finishIq = await withTimeout(request.finish, FINISH_TIMEOUT_MS);
  core.pairing.codeRequests.delete(phone);
  const wrappedBundle = childBytes(child(finishIq, 'link_code_companion_reg'), 'link_code_pairing_wrapped_key_bundle');
  const companionShared = sharedKey(primaryEphemeral.private, companionEphemeral);
  const bundle = wrappedBundle ? openKeyBundle(companionShared, wrappedBundle) : null;
  if (!bundle) {
    session.send(iqError(finishIq, 401, 'not-authorized'));
    session.event('pairing code rejected: key bundle does not authenticate (wrong code)');
    throw new EmulatorError(400, 'wrong_code', 'code: does not match the code the client shows', 'code');
  }
  const companionIdentity = bundle.subarray(0, 32);
  if (!companionIdentity.equals(registration.identityKey)) {
    session.send(iqError(finishIq, 400, 'bad-request'));
    throw new EmulatorError(400, 'identity_mismatch', "the key bundle names a different identity than the client's handshake");
  }
  const identityShared = sharedKey(user.phoneDevice.identity.private, companionIdentity);
  const advSecret = hkdf(Buffer.concat([companionShared, identityShared, bundle.subarray(64, 96)]), 32, undefined, 'adv_secret');
  session.send(iqResult(finishIq));
  return completePairing(core, session, registration, phone, advSecret);
}

/** Decrypts salt(32) ‖ iv(12) ‖ AES-GCM(bundle); null if it does not authenticate. */
function openKeyBundle(companionShared: Buffer, wrapped: Buffer): Buffer | null {
  try {
    const key = hkdf(companionShared, 32, wrapped.subarray(0, 32), 'link_code_pairing_key_bundle_encryption_key');
    const body = wrapped.subarray(44);
    const decipher = createDecipheriv('aes-256-gcm', key, wrapped.subarray(32, 44));
    decipher.setAuthTag(body.subarray(body.length - 16));
    const plaintext = Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]);
    return plaintext.length >= 96 ? plaintext : null;
  } catch {
    return null;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new EmulatorError(504, 'pairing_timeout', `the client did not answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
