// Item 6 (faults), the quick ones: what Baileys reports for each injected fault, and how fast.
import { DisconnectReason } from '@whiskeysockets/baileys';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { type Emulator, type FaultSpec, createEmulator } from '../../src/emulator/index.js';
import { closeAllClients, closed, makeClient, opened, pairAccount, pairAndOpen } from './support/client.js';

let emulator: Emulator;
let nextPhone = 15555000001;
const phone = (): string => String(nextPhone++);
const table: string[] = [];

beforeAll(async () => {
  emulator = await createEmulator();
});
afterEach(() => closeAllClients());
afterAll(async () => {
  await emulator.close();
  console.log(`fault -> Baileys close (time to report)\n${table.join('\n')}`);
});

describe('on an open connection', () => {
  const cases: Array<{ fault: FaultSpec; code: number; message: string }> = [
    { fault: { kind: 'stream-error', code: 515 }, code: 515, message: 'Stream Errored (restart required)' },
    { fault: { kind: 'stream-error', code: 503 }, code: 503, message: 'Stream Errored (unknown)' },
    { fault: { kind: 'stream-error', code: 500 }, code: 500, message: 'Stream Errored (unknown)' },
    { fault: { kind: 'stream-error', code: 440 }, code: 440, message: 'Stream Errored (conflict)' },
    { fault: { kind: 'replace' }, code: 440, message: 'Stream Errored (conflict)' },
    { fault: { kind: 'xmlstreamend' }, code: 428, message: 'Connection Terminated by Server' },
    { fault: { kind: 'close' }, code: 428, message: 'Connection Terminated' },
    { fault: { kind: 'terminate' }, code: 428, message: 'Connection Terminated' },
    { fault: { kind: 'failure', code: 401 }, code: 401, message: 'Connection Failure' },
  ];
  test.each(cases)('$fault.kind $fault.code -> $code', async ({ fault, code, message }) => {
    const account = phone();
    const { sock } = await pairAndOpen(emulator, account);
    const reported = closed(sock);
    const injectedAt = Date.now();
    expect(emulator.injectFault(account, fault)).toEqual({ applied: 'live', sessions: 1 });
    const close = await reported;
    table.push(`${JSON.stringify(fault)} -> ${close.code} ${close.name} "${close.message}" (${close.at - injectedAt} ms)`);
    expect(close).toMatchObject({ code, message });
    expect(close.at - injectedAt).toBeLessThan(1_000);
  });

  test('stream error 401 (device removed) unlinks the companion: the next login fails with 401', async () => {
    const account = phone();
    const { account: paired, sock } = await pairAndOpen(emulator, account);
    const reported = closed(sock);
    emulator.injectFault(account, { kind: 'stream-error', code: 401 });
    const close = await reported;
    table.push(`{"kind":"stream-error","code":401} -> ${close.code} ${close.name} "${close.message}"`);
    expect(close).toMatchObject({ code: DisconnectReason.loggedOut, message: 'Stream Errored (conflict)' });
    const relogin = await closed(makeClient(emulator.url, paired.auth));
    expect(relogin).toMatchObject({ code: 401, message: 'Connection Failure' });
  });
});

describe('at login', () => {
  test.each([401, 403, 405])('<failure reason=%i> instead of <success>', async (reason) => {
    const account = phone();
    const paired = await pairAccount(emulator, account);
    expect(emulator.injectFault(account, { kind: 'failure', code: reason })).toEqual({ applied: 'armed', sessions: 0 });
    const started = Date.now();
    const close = await closed(makeClient(emulator.url, paired.auth));
    table.push(`failure ${reason} at login -> ${close.code} ${close.name ?? '(no name)'} "${close.message}" (${close.at - started} ms after connect)`);
    expect(close).toMatchObject({ code: reason, message: 'Connection Failure' });
    // one-shot by default: the next login succeeds
    await opened(makeClient(emulator.url, paired.auth));
  });

  test('a connection fault injected while offline fires right after the next <success>', async () => {
    const account = phone();
    const paired = await pairAccount(emulator, account);
    expect(emulator.injectFault(account, { kind: 'stream-error', code: 503 })).toEqual({ applied: 'armed', sessions: 0 });
    const close = await closed(makeClient(emulator.url, paired.auth));
    expect(close.code).toBe(503);
  });

  test('HTTP upgrade refused: Baileys never reports a close (even past connectTimeoutMs), unless it listens for unexpected-response', async () => {
    const account = phone();
    const paired = await pairAccount(emulator, account);
    emulator.injectFault(account, { kind: 'upgrade-refused', code: 503, times: 2 });
    const sock = makeClient(emulator.url, paired.auth, { connectTimeoutMs: 1_000 });
    const updates: string[] = [];
    sock.ev.on('connection.update', (u) => updates.push(u.connection ?? '-'));
    await new Promise<void>((resolve) => sock.ws.once('unexpected-response', () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 2_500)); // > connectTimeoutMs: a close would be here by now
    expect(updates).not.toContain('close');
    expect(sock.ws.isConnecting).toBe(true);
    expect(emulator.events.entries().some((e) => e.text.includes('upgrade refused by fault with 503'))).toBe(true);
    table.push('upgrade-refused 503 -> no close reported (stays connecting; checked for 2.5 s with connectTimeoutMs 1 s)');
    sock.end(undefined);

    // the workaround a supervisor can use: turn the refused upgrade into a close itself
    const watched = makeClient(emulator.url, paired.auth);
    watched.ws.on('unexpected-response', (_req: unknown, res: { statusCode?: number }) => {
      const error = Object.assign(new Error(`upgrade refused with ${res.statusCode}`), { output: { statusCode: res.statusCode } });
      void watched.end(error);
    });
    const close = await closed(watched);
    expect(close.code).toBe(503);
    // after the armed attempts the server accepts again
    await opened(makeClient(emulator.url, paired.auth));
  });
});

describe('iq faults', () => {
  test('iq-delay on passive delays open by the delay', async () => {
    const account = phone();
    const paired = await pairAccount(emulator, account);
    await opened(makeClient(emulator.url, paired.auth)); // first login uploads prekeys; measure a plain one
    emulator.injectFault(account, { kind: 'iq-delay', xmlns: 'passive', ms: 1_200, times: 1 });
    const started = Date.now();
    await opened(makeClient(emulator.url, paired.auth));
    const ms = Date.now() - started;
    table.push(`iq-delay passive 1200 ms -> open after ${ms} ms`);
    expect(ms).toBeGreaterThanOrEqual(1_200);
    expect(ms).toBeLessThan(3_000);
  });

  test('iq-error on the prekey count is survived: Baileys still opens', async () => {
    const account = phone();
    const paired = await pairAccount(emulator, account);
    emulator.injectFault(account, { kind: 'iq-error', xmlns: 'encrypt', child: 'count', code: 500, times: 1 });
    await opened(makeClient(emulator.url, paired.auth));
    const answer = await emulator.timeline.waitFor({ phone: account, dir: 'out', tag: 'iq', attrs: { type: 'error' } });
    expect(answer.stanza).toContain('code="500"');
  });

  test('iq-drop on usync: Baileys treats the timeout as an empty device list and "sends" to nobody', async () => {
    const account = phone();
    const { sock } = await pairAndOpen(emulator, account, { defaultQueryTimeoutMs: 800 });
    emulator.injectFault(account, { kind: 'iq-drop', xmlns: 'usync' });
    const started = Date.now();
    const sent = await sock.sendMessage('15559999999@s.whatsapp.net', { text: 'lost' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
    const wire = await emulator.timeline.waitFor({ phone: account, dir: 'in', tag: 'message', attrs: { id: sent!.key.id! } });
    expect(wire.stanza).not.toContain('<to ');
    expect(emulator.peerMessages('15559999999')).toEqual([]);
  });
});
