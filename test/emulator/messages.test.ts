// Item 5 (messages): usync+LID, prekey bundles, acks, decryption as peer and own phone,
// receipts, inbound, offline queue, wire duplicates, account-to-account relay.
import { type WAMessage, type WASocket, proto } from '@whiskeysockets/baileys';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { closed, makeClient, nextUpdate, opened, pairAndOpen, useEmulator } from './support/client.js';

const Status = proto.WebMessageInfo.Status;

const env = useEmulator({ beforeAll, afterAll, afterEach });

function statusOf(value: unknown): number {
  return typeof value === 'string' ? (Status[value as keyof typeof Status] as number) : Number(value ?? 0);
}

/** Resolves when Baileys reports message `id` at `status` or beyond (as an update or a merged upsert). */
function reachesStatus(sock: WASocket, id: string, status: number, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`message ${id} did not reach status ${status}`)), timeoutMs);
    const off = sock.ev.process((events) => {
      const updates = events['messages.update'] ?? [];
      const upserts = events['messages.upsert']?.messages ?? [];
      const hit =
        updates.some((u) => u.key.id === id && statusOf(u.update.status) >= status) ||
        upserts.some((m) => m.key.id === id && statusOf(m.status) >= status);
      if (hit) {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  });
}

/** Resolves with the first upserted message satisfying `predicate`. */
function upserted(sock: WASocket, predicate: (m: WAMessage, type: string) => boolean, timeoutMs = 10_000): Promise<{ message: WAMessage; type: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no matching messages.upsert')), timeoutMs);
    const listener = ({ messages, type }: { messages: WAMessage[]; type: string }): void => {
      const message = messages.find((m) => predicate(m, type));
      if (!message) return;
      clearTimeout(timer);
      sock.ev.off('messages.upsert', listener);
      resolve({ message, type });
    };
    sock.ev.on('messages.upsert', listener);
  });
}

describe('client -> peer', () => {
  test('usync with LID, bundles, ack, decrypted by the peer and by our own phone, delivery receipt', async () => {
    const me = '15554000001';
    const peer = '15554000002';
    const { sock } = await pairAndOpen(env.emulator, me);
    const mark = env.emulator.timeline.mark();
    const started = Date.now();
    const sent = await sock.sendMessage(`${peer}@s.whatsapp.net`, { text: 'hello peer' });
    const id = sent!.key.id!;
    const delivered = reachesStatus(sock, id, Status.DELIVERY_ACK);
    const atPeer = await env.emulator.waitForDecrypted(peer, (m) => m.id === id);
    const latency = Date.now() - started;
    expect(atPeer).toMatchObject({ id, from: me, text: 'hello peer', kind: 'extendedTextMessage', copies: 1 });
    expect(latency).toBeLessThan(2_000);
    const atOwnPhone = await env.emulator.waitForDecrypted(me, (m) => m.id === id, { own: true });
    expect(atOwnPhone).toMatchObject({ text: 'hello peer', destination: `${peer}@s.whatsapp.net` });
    await delivered;

    const stanzas = env.emulator.timeline.entries({ phone: me, after: mark });
    const usync = stanzas.find((e) => e.dir === 'out' && e.node?.tag === 'iq' && e.stanza.includes('<usync'));
    expect(usync?.stanza).toMatch(/<lid val="\d+@lid"\/>/);
    expect(usync?.stanza).toContain('<device id="1" key-index="1"/>'); // our own companion is listed
    expect(stanzas.some((e) => e.dir === 'out' && e.stanza.includes('<skey>') && e.stanza.includes('<identity>'))).toBe(true);
    expect(stanzas.some((e) => e.dir === 'out' && e.node?.tag === 'ack' && e.node.attrs.class === 'message' && e.node.attrs.id === id)).toBe(true);
    expect(stanzas.some((e) => e.dir === 'out' && e.node?.tag === 'receipt' && e.node.attrs.id === id)).toBe(true);
  });

  test('a read receipt from the peer reaches Baileys as READ', async () => {
    const me = '15554000003';
    const peer = '15554000004';
    const { sock } = await pairAndOpen(env.emulator, me);
    const sent = await sock.sendMessage(`${peer}@s.whatsapp.net`, { text: 'read me' });
    const id = sent!.key.id!;
    await env.emulator.waitForDecrypted(peer, (m) => m.id === id);
    const read = reachesStatus(sock, id, Status.READ);
    env.emulator.sendReceipt({ from: peer, to: me, id, type: 'read' });
    await read;
  });

  test('the same id sent twice is one message at the peer with copies = 2', async () => {
    const me = '15554000005';
    const peer = '15554000006';
    const { sock } = await pairAndOpen(env.emulator, me);
    const messageId = 'DUPLICATE0000000000001';
    await sock.sendMessage(`${peer}@s.whatsapp.net`, { text: 'only once' }, { messageId });
    await env.emulator.waitForDecrypted(peer, (m) => m.id === messageId);
    await sock.sendMessage(`${peer}@s.whatsapp.net`, { text: 'only once' }, { messageId });
    await env.emulator.waitForDecrypted(peer, (m) => m.id === messageId && m.copies === 2);
    const received = env.emulator.peerMessages(peer);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ id: messageId, text: 'only once', copies: 2 });
    const onWire = env.emulator.timeline.entries({ phone: me }).filter((e) => e.dir === 'in' && e.node?.tag === 'message' && e.node.attrs.id === messageId);
    expect(onWire).toHaveLength(2);
  });
});

describe('peer -> client', () => {
  test('an inbound text reaches Baileys, which sends a receipt the peer sees', async () => {
    const me = '15554000007';
    const peer = '15554000008';
    const { sock } = await pairAndOpen(env.emulator, me);
    const arrived = upserted(sock, (m, type) => type === 'notify' && m.message?.conversation === 'hi from the peer');
    const { id, delivered } = await env.emulator.sendInbound({ from: peer, to: me, text: 'hi from the peer' });
    expect(delivered).toBe(true);
    const { message } = await arrived;
    expect(message.key).toMatchObject({ id, fromMe: false, remoteJid: `${peer}@s.whatsapp.net` });
    await env.emulator.timeline.waitFor({ phone: me, dir: 'in', tag: 'receipt', attrs: { id } });
    expect(env.emulator.sentMessages(peer).find((m) => m.id === id)?.status).toBe('delivered');
  });

  test('messages sent while the account is offline are delivered at the next login', async () => {
    const me = '15554000009';
    const peer = '15554000010';
    const { account, sock } = await pairAndOpen(env.emulator, me);
    const gone = closed(sock);
    sock.end(undefined);
    await gone;
    const first = await env.emulator.sendInbound({ from: peer, to: me, text: 'while you were away 1' });
    const second = await env.emulator.sendInbound({ from: peer, to: me, text: 'while you were away 2' });
    expect(first.delivered).toBe(false);
    expect(env.emulator.accounts().find((a) => a.phone === me)?.devices[0]?.queued).toBe(2);

    const mark = env.emulator.timeline.mark();
    const again = makeClient(env.emulator.url, account.auth);
    const texts: string[] = [];
    again.ev.on('messages.upsert', ({ messages }) => texts.push(...messages.map((m) => m.message?.conversation ?? '')));
    const caughtUp = nextUpdate(again, (u) => u.receivedPendingNotifications === true);
    await opened(again);
    await caughtUp;
    await env.emulator.timeline.waitFor({ phone: me, dir: 'in', tag: 'receipt', attrs: { id: second.id } }, { after: mark });
    expect(texts).toEqual(['while you were away 1', 'while you were away 2']);
    const out = env.emulator.timeline.entries({ phone: me, after: mark }).filter((e) => e.dir === 'out');
    expect(out.filter((e) => e.node?.tag === 'message').every((e) => e.node!.attrs.offline === '1')).toBe(true);
    expect(out.some((e) => e.stanza.includes('<offline count="2"/>'))).toBe(true);
    expect(env.emulator.accounts().find((a) => a.phone === me)?.devices[0]?.queued).toBe(0);
  });
});

test('account to account: the server relays the companion copy to the other account', async () => {
  const alice = await pairAndOpen(env.emulator, '15554000011');
  const bob = await pairAndOpen(env.emulator, '15554000012');
  const arrived = upserted(bob.sock, (m, type) => type === 'notify' && m.message?.extendedTextMessage?.text === 'hi bob');
  const sent = await alice.sock.sendMessage('15554000012@s.whatsapp.net', { text: 'hi bob' });
  const { message } = await arrived;
  expect(message.key).toMatchObject({ id: sent!.key.id, fromMe: false });
  expect(message.key.remoteJid).toContain('15554000011');
  // bob's simulated phone got its own copy too
  await env.emulator.waitForDecrypted('15554000012', (m) => m.id === sent!.key.id);
});
