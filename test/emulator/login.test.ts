// Item 4 (login): registered creds -> <success> -> open; every iq answered, unknown ones too.
import { DisconnectReason } from '@whiskeysockets/baileys';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import { closed, makeClient, nextUpdate, opened, pairAccount, pairAndOpen, useEmulator } from './support/client.js';

const env = useEmulator({ beforeAll, afterAll, afterEach });

test('a registered client logs in, gets <success>, opens, and every iq it sent got an answer', async () => {
  const phone = '15553000001';
  const { account, sock: first } = await pairAndOpen(env.emulator, phone); // first login uploads the prekeys
  first.end(undefined);
  await env.emulator.timeline.waitFor({ phone, dir: 'in', tag: 'iq', attrs: { xmlns: 'passive' } });

  const mark = env.emulator.timeline.mark();
  const sock = makeClient(env.emulator.url, account.auth);
  const started = Date.now();
  const pending = nextUpdate(sock, (u) => u.receivedPendingNotifications === true);
  await opened(sock);
  const openMs = Date.now() - started;
  await pending;
  expect(openMs).toBeLessThan(2_000);
  const success = await env.emulator.timeline.waitFor({ phone, dir: 'out', tag: 'success' }, { after: mark });
  expect(success.node?.attrs.lid).toBe(account.auth.creds.me?.lid);
  // the init queries (props, blocklist, privacy) follow 'open'; wait for the last one's answer
  await env.emulator.timeline.waitFor((e) => e.session === success.session && e.dir === 'in' && e.node?.attrs.xmlns === 'privacy', { after: mark });
  const entries = env.emulator.timeline.entries({ phone, after: mark }).filter((e) => e.session === success.session);
  const asked = entries.filter((e) => e.dir === 'in' && e.node?.tag === 'iq' && ['get', 'set'].includes(e.node.attrs.type ?? ''));
  expect(asked.map((e) => e.node!.attrs.xmlns)).toEqual(expect.arrayContaining(['encrypt', 'passive', 'abt', 'blocklist', 'privacy']));
  await Promise.all(
    asked.map((q) => env.emulator.timeline.waitFor({ phone, dir: 'out', tag: 'iq', attrs: { id: q.node!.attrs.id! } }, { after: mark, timeoutMs: 2_000 })),
  );
  expect(entries.some((e) => e.dir === 'out' && e.stanza.includes('<offline count="0"/>'))).toBe(true);
});

test('an iq the env.emulator does not know gets an empty result at once, and is logged', async () => {
  const phone = '15553000002';
  const { sock } = await pairAndOpen(env.emulator, phone);
  const started = Date.now();
  const answer = await sock.query({
    tag: 'iq',
    attrs: { to: 's.whatsapp.net', type: 'get', xmlns: 'emulator:unknown' },
    content: [{ tag: 'mystery', attrs: {} }],
  });
  expect(Date.now() - started).toBeLessThan(1_000);
  expect(answer.attrs.type).toBe('result');
  expect(env.emulator.events.entries(phone).some((e) => e.text.includes('unhandled iq emulator:unknown/mystery'))).toBe(true);
});

test('w:p keepalive pings are answered', async () => {
  const phone = '15553000003';
  const { sock } = await pairAndOpen(env.emulator, phone, { keepAliveIntervalMs: 200 });
  const ping = await env.emulator.timeline.waitFor({ phone, dir: 'in', tag: 'iq', attrs: { xmlns: 'w:p' } });
  await env.emulator.timeline.waitFor({ phone, dir: 'out', tag: 'iq', attrs: { id: ping.node!.attrs.id!, type: 'result' } });
  expect(sock.ws.isOpen).toBe(true);
});

test('a device the server does not know gets <failure reason=401>', async () => {
  const account = await pairAccount(env.emulator, '15553000004');
  account.auth.creds.me = { ...account.auth.creds.me!, id: '15553000004:7@s.whatsapp.net' };
  const close = await closed(makeClient(env.emulator.url, account.auth));
  expect(close.code).toBe(DisconnectReason.loggedOut);
  expect(close.message).toBe('Connection Failure');
});

test('a second login with the same creds replaces the first (440 to the older socket)', async () => {
  const phone = '15553000005';
  const { account, sock: older } = await pairAndOpen(env.emulator, phone);
  const replaced = closed(older);
  const newer = makeClient(env.emulator.url, account.auth);
  await opened(newer);
  const close = await replaced;
  expect(close.code).toBe(DisconnectReason.connectionReplaced);
  expect(close.message).toBe('Stream Errored (conflict)');
  expect(newer.ws.isOpen).toBe(true);
});

test('logout removes the companion: Baileys reports 401 and the creds no longer log in', async () => {
  const phone = '15553000006';
  const { account, sock } = await pairAndOpen(env.emulator, phone);
  const reported = closed(sock);
  await sock.logout();
  expect((await reported).code).toBe(DisconnectReason.loggedOut);
  await env.emulator.timeline.waitFor({ phone, dir: 'in', tag: 'iq', child: 'remove-companion-device' });
  expect(env.emulator.accounts().find((a) => a.phone === phone)).toBeUndefined();
  expect((await closed(makeClient(env.emulator.url, account.auth))).code).toBe(DisconnectReason.loggedOut);
});

test('onWhatsApp (usync contact query): every valid number exists here', async () => {
  const { sock } = await pairAndOpen(env.emulator, '15553000007');
  expect(await sock.onWhatsApp('+15553999999')).toEqual([{ jid: '15553999999@s.whatsapp.net', exists: true }]);
});
