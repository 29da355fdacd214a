// Item 8 (control API contract): the routes black-box tests depend on, and input validation.
import { DisconnectReason } from '@whiskeysockets/baileys';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { type Emulator, EmulatorControlClient, createEmulator } from '../../src/emulator/index.js';
import { memoryAuthState } from './support/auth.js';
import { closeAllClients, closed, makeClient, nextQr, nextUpdate, opened } from './support/client.js';

let emulator: Emulator;
let control: string;
let client: EmulatorControlClient;

beforeAll(async () => {
  emulator = await createEmulator();
  control = await emulator.startControlApi();
  client = new EmulatorControlClient(control);
});
afterEach(() => closeAllClients());
afterAll(async () => {
  await emulator.close();
});

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const init: RequestInit = { method };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const response = await fetch(`${control}${path}`, init);
  return { status: response.status, json: await response.json() };
}

test('binds loopback only', () => {
  expect(control).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
});

test('contract: pair by QR, inbound, peer messages, faults, timeline', async () => {
  const me = '15558000001';
  const peer = '15558000002';
  const auth = memoryAuthState();
  const pairing = makeClient(emulator.url, auth);
  const qr = await nextQr(pairing);
  const restart = closed(pairing);
  const paired = await call('POST', '/pair', { qr, phone: me });
  expect(paired).toMatchObject({ status: 200, json: { jid: `${me}:1@s.whatsapp.net` } });
  expect((await restart).code).toBe(DisconnectReason.restartRequired);

  const sock = makeClient(emulator.url, auth);
  await opened(sock);

  const gotInbound = new Promise<string>((resolve) =>
    sock.ev.on('messages.upsert', ({ messages, type }) => {
      const text = messages[0]?.message?.conversation;
      if (type === 'notify' && text) resolve(text);
    }),
  );
  const inbound = await call('POST', '/inbound', { from: peer, to: me, text: 'over http' });
  expect(inbound.status).toBe(200);
  expect((inbound.json as { id: string }).id).toMatch(/^[0-9A-F]{20}$/);
  expect(await gotInbound).toBe('over http');

  const sent = await sock.sendMessage(`${peer}@s.whatsapp.net`, { text: 'to the peer' });
  await emulator.waitForDecrypted(peer, (m) => m.id === sent!.key.id);
  const messages = await call('GET', `/peers/${peer}/messages`);
  expect(messages.status).toBe(200);
  expect(messages.json).toEqual([{ id: sent!.key.id, from: me, fromDevice: 1, text: 'to the peer', kind: 'extendedTextMessage', at: expect.any(Number), copies: 1 }]);

  const timeline = await call('GET', `/timeline?phone=${me}`);
  const entries = timeline.json as Array<{ at: number; dir: string; stanza: string }>;
  expect(entries.length).toBeGreaterThan(10);
  expect(entries[0]).toEqual({ seq: expect.any(Number), at: expect.any(Number), phone: me, session: expect.any(Number), dir: 'in', stanza: '<handshake type="clientHello"/>' });
  expect(entries.some((e) => e.dir === 'out' && e.stanza.startsWith('<success'))).toBe(true);

  // `?detail=1` says how a fault was applied (a 1 ms silence is harmless here).
  expect(await call('POST', '/faults?detail=1', { phone: me, kind: 'app-silent', ms: 1 })).toEqual({ status: 200, json: { applied: 'live', sessions: 1 } });
  const reported = closed(sock);
  const fault = await call('POST', '/faults', { phone: me, kind: 'stream-error', code: 503 });
  expect(fault).toEqual({ status: 200, json: {} }); // the contract's exact answer
  expect((await reported).code).toBe(503);
});

test('contract: pair by pairing code', async () => {
  const me = '15558000003';
  const sock = makeClient(emulator.url, memoryAuthState());
  await nextUpdate(sock, (u) => Boolean(u.qr));
  const code = await sock.requestPairingCode(me);
  const restart = closed(sock);
  expect(await call('POST', '/pair', { code, phone: me })).toMatchObject({ status: 200, json: { jid: `${me}:1@s.whatsapp.net` } });
  expect((await restart).code).toBe(515);
});

test('extension: long-poll wait for a stanza, with a 408 on timeout', async () => {
  const after = emulator.timeline.mark();
  const waiting = client.waitForStanza({ dir: 'out', tag: 'iq', contains: 'pair-device', after, timeoutMs: 5_000 });
  makeClient(emulator.url, memoryAuthState());
  expect((await waiting).stanza).toContain('<pair-device>');
  const timeout = await call('GET', `/timeline/wait?tag=nothing-like-this&timeoutMs=50`);
  expect(timeout.status).toBe(408);
  expect(timeout.json).toMatchObject({ error: { code: 'timeout' } });
});

describe('bad input gets a 4xx naming the field, never a crash', () => {
  const cases: Array<[string, string, unknown, number, string]> = [
    ['POST', '/pair', {}, 400, 'phone'],
    ['POST', '/pair', { phone: 'abc', qr: 'x' }, 400, 'phone'],
    ['POST', '/pair', { phone: '15558000009' }, 400, 'qr'],
    ['POST', '/pair', { phone: '15558000009', qr: 'x', code: 'y' }, 400, 'qr'],
    ['POST', '/pair', { phone: '15558000009', qr: 'nope,a,b,c,1' }, 404, 'qr'],
    ['POST', '/pair', { phone: '15558000009', code: 'ABCDEFGH' }, 404, 'phone'],
    ['POST', '/faults', { phone: '15558000009', kind: 'explode' }, 400, 'kind'],
    ['POST', '/faults', { phone: '15558000009', kind: 'stream-error' }, 400, 'code'],
    ['POST', '/faults', { phone: '15558000009', kind: 'black-hole', ms: -5 }, 400, 'ms'],
    ['POST', '/faults', { kind: 'close' }, 400, 'phone'],
    ['POST', '/inbound', { from: '15558000009', to: '15558000010' }, 400, 'text'],
    ['POST', '/inbound', { from: '15558000009', to: '15558000010', text: 'x' }, 404, 'to'],
    ['POST', '/inbound', [1, 2], 400, 'body'],
    ['POST', '/inbound', '{"from": ', 400, 'body'],
    ['GET', '/peers/not-a-phone/messages', undefined, 400, 'phone'],
    ['GET', '/timeline?phone=12', undefined, 400, 'phone'],
  ];
  test.each(cases)('%s %s %j -> %i (%s)', async (method, path, body, status, field) => {
    const response = await call(method, path, body);
    expect(response.status).toBe(status);
    expect(response.json).toMatchObject({ error: { code: expect.any(String), message: expect.stringContaining(field), field } });
  });

  test('unknown routes are 404 and wrong methods 405, with the JSON error shape', async () => {
    expect(await call('GET', '/nowhere')).toMatchObject({ status: 404, json: { error: { code: 'not_found' } } });
    expect(await call('GET', '/pair')).toMatchObject({ status: 405, json: { error: { code: 'method_not_allowed' } } });
  });

  test('the typed client surfaces errors as ControlApiError', async () => {
    await expect(client.inbound({ from: '1', to: '15558000010', text: 'x' })).rejects.toMatchObject({ status: 400, field: 'from' });
  });
});
