/**
 * Linking a new companion, with the emulator playing the user's phone: `pair-device` with QR
 * refs to a registering client, a "scan" of the QR it shows, `pair-success` with a signed
 * device identity, a strict check of the client's counter-signature, then stream error 515
 * (restart required), after which the client logs in with its new identity.
 */
import { randomBytes } from 'node:crypto';
import { type BinaryNode, proto } from '@whiskeysockets/baileys';
import { checkDeviceSignature, signDeviceIdentity } from './adv.js';
import type { EmulatorCore } from './core.js';
import { EmulatorError } from './errors.js';
import type { Registration } from './pairing-book.js';
import type { Session } from './session.js';
import { child, readUInt } from './stanza.js';
import { Companion } from './user.js';

/** What a successful pairing created. */
export interface PairResult {
  /** The companion's device jid, e.g. `15550001111:1@s.whatsapp.net`. */
  jid: string;
  /** Its LID device jid. */
  lid: string;
  device: number;
}

const PAIR_SIGN_TIMEOUT_MS = 10_000;

/** Stores the client's registration keys and sends it QR refs. */
export function startQrPairing(
  core: EmulatorCore,
  session: Session,
  data: proto.ClientPayload.IDevicePairingRegistrationData,
): void {
  const registration = parseRegistration(data);
  if (!registration) {
    session.event('registration payload incomplete; closing');
    session.failure(400);
    return;
  }
  session.state = 'registering';
  core.pairing.registrations.set(session.id, registration);
  const refs = Array.from({ length: core.settings.qrRefs }, () => randomBytes(15).toString('base64url'));
  core.sessions.addRefs(session, refs);
  session.event(`registration: sent ${refs.length} QR refs`);
  session
    .sendIq({
      tag: 'iq',
      attrs: { type: 'set', xmlns: 'md' },
      content: [{ tag: 'pair-device', attrs: {}, content: refs.map((ref) => ({ tag: 'ref', attrs: {}, content: Buffer.from(ref) })) }],
    })
    .catch(() => session.event('pair-device was not acknowledged'));
}

function parseRegistration(data: proto.ClientPayload.IDevicePairingRegistrationData): Registration | null {
  const registrationId = readUInt(data.eRegid ?? undefined);
  const keyId = readUInt(data.eSkeyId ?? undefined);
  if (registrationId === undefined || keyId === undefined || !data.eIdent || !data.eSkeyVal || !data.eSkeySig) return null;
  let platform = 'unknown';
  if (data.deviceProps) {
    const props = proto.DeviceProps.decode(data.deviceProps);
    platform = props.os ?? platform;
  }
  return {
    registrationId,
    identityKey: Buffer.from(data.eIdent),
    signedPreKey: { keyId, publicKey: Buffer.from(data.eSkeyVal), signature: Buffer.from(data.eSkeySig) },
    platform,
    claimedBy: null,
  };
}

/** The fields of the QR text Baileys emits: `…#ref,noiseKey,identityKey,advSecret,platform`. */
interface QrFields {
  ref: string;
  noiseKey: Buffer;
  identityKey: Buffer;
  advSecret: Buffer;
}

function parseQr(qr: string): QrFields {
  const parts = qr.slice(qr.indexOf('#') + 1).split(',');
  const [ref, noise, identity, adv] = parts;
  if (!ref || !noise || !identity || !adv) {
    throw new EmulatorError(400, 'bad_qr', 'qr: expected "ref,noiseKey,identityKey,advSecret,platform"', 'qr');
  }
  return {
    ref,
    noiseKey: Buffer.from(noise, 'base64'),
    identityKey: Buffer.from(identity, 'base64'),
    advSecret: Buffer.from(adv, 'base64'),
  };
}

/** The phone scans `qr`: links the registering client that showed it to `phone`. */
export async function scanQr(core: EmulatorCore, qr: string, phone: string): Promise<PairResult> {
  const fields = parseQr(qr);
  const session = core.sessions.byRef(fields.ref);
  const registration = session ? core.pairing.registrations.get(session.id) : undefined;
  if (!session || !registration || session.state !== 'registering') {
    throw new EmulatorError(404, 'unknown_qr', 'qr: no connected client is showing this QR code (expired or already used?)', 'qr');
  }
  if (!session.clientStatic?.equals(fields.noiseKey) || !registration.identityKey.equals(fields.identityKey)) {
    throw new EmulatorError(400, 'qr_mismatch', "qr: keys do not match the client's handshake", 'qr');
  }
  return completePairing(core, session, registration, phone, fields.advSecret);
}

/** Finds the pending registration of a connection, or fails with a 404. */
export function registrationOf(core: EmulatorCore, session: Session): Registration {
  const registration = core.pairing.registrations.get(session.id);
  if (!registration || session.state !== 'registering') {
    throw new EmulatorError(404, 'not_registering', 'the client is no longer waiting to be paired');
  }
  return registration;
}

/** Sends pair-success, verifies the client's device signature, records the companion, sends 515. */
export async function completePairing(
  core: EmulatorCore,
  session: Session,
  registration: Registration,
  phone: string,
  advSecret: Buffer,
): Promise<PairResult> {
  if (registration.claimedBy !== null) {
    throw new EmulatorError(409, 'already_pairing', `this client is already being paired by ${registration.claimedBy}`);
  }
  registration.claimedBy = phone;
  const user = core.world.ensureUser(phone);
  const device = user.allocateDevice();
  const jid = `${phone}:${device}@s.whatsapp.net`;
  const lid = `${user.lid}:${device}@lid`;
  const identity = signDeviceIdentity(user.phoneDevice.identity, registration.identityKey, device, advSecret);
  session.bind(phone, device);
  let answer: BinaryNode;
  try {
    answer = await session.sendIq(
      {
        tag: 'iq',
        attrs: { type: 'set', xmlns: 'md', t: String(Math.floor(Date.now() / 1000)) },
        content: [
          {
            tag: 'pair-success',
            attrs: {},
            content: [
              { tag: 'device-identity', attrs: {}, content: identity.container },
              { tag: 'platform', attrs: { name: 'android' } },
              { tag: 'device', attrs: { jid, lid } },
            ],
          },
        ],
      },
      PAIR_SIGN_TIMEOUT_MS,
    );
  } catch (error) {
    registration.claimedBy = null;
    throw new EmulatorError(504, 'pairing_timeout', `the client did not confirm pairing: ${(error as Error).message}`);
  }
  const signed = child(child(answer, 'pair-device-sign'), 'device-identity');
  const problem =
    signed?.content instanceof Uint8Array
      ? checkDeviceSignature(signed.content, identity.details, registration.identityKey, user.phoneDevice.identity.public)
      : 'no <pair-device-sign><device-identity> in the answer';
  if (problem !== null) {
    session.event(`pairing rejected: ${problem}`);
    session.streamError(401, 'pairing rejected');
    throw new EmulatorError(502, 'bad_device_signature', `the client's pairing answer is invalid: ${problem}`);
  }
  const companion = new Companion(
    device,
    session.clientStatic!,
    registration.identityKey,
    registration.registrationId,
    registration.signedPreKey,
    registration.platform,
  );
  user.companions.set(device, companion);
  core.pairing.forget(session.id);
  session.event(`paired as ${jid} (device signature verified); sending 515`);
  session.streamError(515, 'restart required after pairing');
  return { jid, lid, device };
}
