// Item 3 (pairing): QR scan and pairing code, with the env.emulator as the phone.
import { DisconnectReason, proto } from '@whiskeysockets/baileys';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import { checkDeviceSignature, signDeviceIdentity } from '../../src/emulator/adv.js';
import { generateKeyPair, sign } from '../../src/emulator/curve.js';
import { EmulatorError } from '../../src/emulator/index.js';
import { memoryAuthState } from './support/auth.js';
import { closed, makeClient, nextQr, nextUpdate, opened, useEmulator } from './support/client.js';

const env = useEmulator({ beforeAll, afterAll, afterEach }, { qrRefs: 2 });

test('QR: Baileys shows a QR, the phone scans it, pair-success is verified, 515, then login opens', async () => {
  const phone = '15552000001';
  const auth = memoryAuthState();
  const sock = makeClient(env.emulator.url, auth);
  const qr = await nextQr(sock);
  expect(qr).toMatch(/^https:\/\/wa\.me\/settings\/linked_devices#[^,]+,[^,]+,[^,]+,[^,]+,\d+$/);
  const started = Date.now();
  const restart = closed(sock);
  const newLogin = nextUpdate(sock, (u) => u.isNewLogin === true);
  const result = await env.emulator.pair({ qr, phone });
  expect(result.jid).toBe(`${phone}:1@s.whatsapp.net`);
  await newLogin;
  const close = await restart;
  expect(close.code).toBe(DisconnectReason.restartRequired);
  expect(auth.creds.me?.id).toBe(result.jid);
  expect(auth.creds.me?.lid).toBe(result.lid);
  expect(auth.creds.platform).toBe('android');
  expect(env.emulator.events.entries(phone).some((e) => e.text.includes('device signature verified'))).toBe(true);
  for (const tag of ['pair-device', 'pair-success']) {
    await env.emulator.timeline.waitFor({ phone, dir: 'out', tag: 'iq', child: tag });
  }
  await env.emulator.timeline.waitFor({ phone, dir: 'in', tag: 'iq', child: 'pair-device-sign' });

  const again = makeClient(env.emulator.url, auth);
  await opened(again);
  const roundTrip = Date.now() - started;
  expect(roundTrip).toBeLessThan(5_000);
  expect(env.emulator.accounts().find((a) => a.phone === phone)?.devices.map((d) => d.device)).toEqual([1]);
});

test('pairing code: requestPairingCode, the user types it on the phone, 515, then login opens', async () => {
  const phone = '15552000002';
  const auth = memoryAuthState();
  const sock = makeClient(env.emulator.url, auth);
  await nextQr(sock); // the connection is registering once refs arrive
  const code = await sock.requestPairingCode(phone);
  expect(code).toMatch(/^[0-9A-Z]{8}$/);
  const restart = closed(sock);
  const result = await env.emulator.pair({ code: `${code.slice(0, 4)}-${code.slice(4)}`, phone });
  expect(result.jid).toBe(`${phone}:1@s.whatsapp.net`);
  expect((await restart).code).toBe(DisconnectReason.restartRequired);
  await env.emulator.timeline.waitFor({ phone, dir: 'out', tag: 'notification', attrs: { type: 'link_code_companion_reg' } });
  const again = makeClient(env.emulator.url, auth);
  await opened(again);
});

test('a wrong pairing code is refused and links nothing', async () => {
  const phone = '15552000003';
  const sock = makeClient(env.emulator.url, memoryAuthState());
  await nextQr(sock);
  const code = await sock.requestPairingCode(phone);
  const wrong = code.startsWith('A') ? `B${code.slice(1)}` : `A${code.slice(1)}`;
  await expect(env.emulator.pair({ code: wrong, phone })).rejects.toMatchObject({ status: 400, code: 'wrong_code', field: 'code' });
  expect(env.emulator.accounts().find((a) => a.phone === phone)).toBeUndefined();
});

test('a QR nobody shows is refused with 404; the same QR cannot pair twice', async () => {
  await expect(env.emulator.pair({ qr: 'https://wa.me/settings/linked_devices#nope,AAAA,AAAA,AAAA,1', phone: '15552000004' })).rejects.toMatchObject({
    status: 404,
    code: 'unknown_qr',
  });
  await expect(env.emulator.pair({ qr: 'garbage', phone: '15552000004' })).rejects.toBeInstanceOf(EmulatorError);

  const sock = makeClient(env.emulator.url, memoryAuthState());
  const qr = await nextQr(sock);
  const restart = closed(sock);
  await env.emulator.pair({ qr, phone: '15552000005' });
  await restart;
  await expect(env.emulator.pair({ qr, phone: '15552000005' })).rejects.toMatchObject({ status: 404 });
});

test('unscanned QR refs run out: Baileys reports 408 "QR refs attempts ended"', async () => {
  const sock = makeClient(env.emulator.url, memoryAuthState(), { qrTimeout: 300 });
  const close = await closed(sock);
  expect(close.code).toBe(408);
  expect(close.message).toBe('QR refs attempts ended');
});

test('the device-signature check is strict: a signature by another key is rejected', () => {
  const phoneKey = generateKeyPair();
  const companion = generateKeyPair();
  const issued = signDeviceIdentity(phoneKey, companion.public, 1, Buffer.alloc(32, 3));
  const container = proto.ADVSignedDeviceIdentityHMAC.decode(issued.container);
  const signed = proto.ADVSignedDeviceIdentity.decode(container.details!);
  const message = Buffer.concat([Buffer.from([6, 1]), issued.details, companion.public, phoneKey.public]);
  const good = proto.ADVSignedDeviceIdentity.encode({ ...signed, deviceSignature: sign(companion.private, message) }).finish();
  const forged = proto.ADVSignedDeviceIdentity.encode({ ...signed, deviceSignature: sign(generateKeyPair().private, message) }).finish();
  expect(checkDeviceSignature(good, issued.details, companion.public, phoneKey.public)).toBeNull();
  expect(checkDeviceSignature(forged, issued.details, companion.public, phoneKey.public)).toBe('device signature does not verify');
});
