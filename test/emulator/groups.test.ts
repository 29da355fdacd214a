// Groups: the w:g2 metadata answer Baileys parses, a Baileys group send decrypted by every
// simulated member (pairwise sender key, then the skmsg with the group cipher) with receipts from
// the group, a member's message to the group as an account's Baileys reads it, relay between
// accounts in a group, and w:gp2 notifications.
import { type GroupMetadata, type WAMessage, type WASocket } from '@whiskeysockets/baileys';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { pairAndOpen, upserted, useEmulator } from './support/client.js';

const env = useEmulator({ beforeAll, afterAll, afterEach });

/** Resolves with the next event `name` satisfying `predicate`. */
function nextEvent<T>(sock: WASocket, name: 'group-participants.update' | 'groups.update', predicate: (e: T) => boolean, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no matching ${name}`)), timeoutMs);
    const listener = (e: unknown): void => {
      if (!predicate(e as T)) return;
      clearTimeout(timer);
      sock.ev.off(name, listener);
      resolve(e as T);
    };
    sock.ev.on(name, listener);
  });
}

describe('group metadata (w:g2)', () => {
  test('Baileys parses the answer: id, subject, addressing, members with their LID or number, admins', async () => {
    const me = '15557000001';
    const { sock } = await pairAndOpen(env.emulator, me);
    const lidGroup = env.emulator.createGroup({ subject: 'Team', participants: [me, '15557000002', '15557000003'], admins: ['15557000002'] });
    const meta: GroupMetadata = await sock.groupMetadata(lidGroup.jid);
    expect(lidGroup.jid).toMatch(/^120363\d{12}@g\.us$/);
    expect(meta).toMatchObject({ id: lidGroup.jid, subject: 'Team', addressingMode: 'lid', size: 3 });
    const byPhone = new Map(lidGroup.participants.map((p) => [p.phone, p]));
    expect(meta.participants).toEqual([
      { id: byPhone.get(me)!.lid, phoneNumber: `${me}@s.whatsapp.net`, lid: undefined, username: undefined, admin: null },
      { id: byPhone.get('15557000002')!.lid, phoneNumber: '15557000002@s.whatsapp.net', lid: undefined, username: undefined, admin: 'superadmin' },
      { id: byPhone.get('15557000003')!.lid, phoneNumber: '15557000003@s.whatsapp.net', lid: undefined, username: undefined, admin: null },
    ]);
    expect(meta.owner).toBe(byPhone.get('15557000002')!.lid);

    const pnGroup = env.emulator.createGroup({ subject: 'Old style', participants: ['15557000004', me], addressingMode: 'pn' });
    const pn = await sock.groupMetadata(pnGroup.jid);
    expect(pn.addressingMode).toBe('pn');
    expect(pn.participants.map((p) => [p.id, p.lid, p.admin])).toEqual([
      ['15557000004@s.whatsapp.net', pnGroup.participants[0]!.lid, 'superadmin'],
      [`${me}@s.whatsapp.net`, pnGroup.participants[1]!.lid, null],
    ]);
    const all = await sock.groupFetchAllParticipating();
    expect(Object.keys(all).sort()).toEqual([lidGroup.jid, pnGroup.jid].sort());
  });

  test('a group the account is not in is refused (403), an unknown one is 404', async () => {
    const me = '15557000011';
    const { sock } = await pairAndOpen(env.emulator, me);
    const other = env.emulator.createGroup({ subject: 'Private', participants: ['15557000012', '15557000013'] });
    // Baileys reports an iq error's code as the error's data.
    await expect(sock.groupMetadata(other.jid)).rejects.toMatchObject({ message: 'forbidden', data: 403 });
    await expect(sock.groupMetadata('120363999999999999@g.us')).rejects.toMatchObject({ message: 'item-not-found', data: 404 });
  });
});

describe.each(['lid', 'pn'] as const)('a group send from Baileys (%s addressing)', (addressingMode) => {
  const base = addressingMode === 'lid' ? '1555710' : '1555720';
  test('every simulated member decrypts it once (sender key, then skmsg), our own phone too, and each sends a receipt from the group', async () => {
    const me = `${base}0001`;
    const members = [`${base}0002`, `${base}0003`, `${base}0004`];
    const { sock } = await pairAndOpen(env.emulator, me);
    const group = env.emulator.createGroup({ subject: 'Crew', participants: [me, ...members], addressingMode });
    const mark = env.emulator.timeline.mark();
    const sent = await sock.sendMessage(group.jid, { text: 'hello crew' });
    const id = sent!.key.id!;
    for (const phone of members) {
      const got = await env.emulator.waitForDecrypted(phone, (m) => m.id === id);
      expect(got).toMatchObject({ from: me, text: 'hello crew', group: group.jid, copies: 1 });
    }
    const own = await env.emulator.waitForDecrypted(me, (m) => m.id === id, { own: true });
    expect(own).toMatchObject({ text: 'hello crew', destination: group.jid, group: group.jid });
    // One stanza to the group: pairwise copies (pkmsg) to every member device, one skmsg.
    const stanza = env.emulator.timeline.entries({ phone: me, after: mark }).find((e) => e.dir === 'in' && e.node?.tag === 'message')!;
    expect(stanza.node!.attrs.to).toBe(group.jid);
    expect(stanza.stanza).toContain('type="skmsg"');
    // A receipt from the group per member, naming the member as the group addresses it.
    for (const p of group.participants.filter((p) => p.phone !== me)) {
      await env.emulator.timeline.waitFor({ phone: me, dir: 'out', tag: 'receipt', attrs: { from: group.jid, participant: p.jid, id } }, { after: mark });
    }

    // The second message carries no sender key (Baileys remembers who has it): the skmsg alone is read.
    const mark2 = env.emulator.timeline.mark();
    const second = await sock.sendMessage(group.jid, { text: 'second' });
    for (const phone of members) await env.emulator.waitForDecrypted(phone, (m) => m.id === second!.key.id && m.text === 'second');
    const stanza2 = env.emulator.timeline.entries({ phone: me, after: mark2 }).find((e) => e.dir === 'in' && e.node?.tag === 'message')!;
    expect(stanza2.stanza).not.toContain('<participants>');
    for (const phone of members) expect(env.emulator.peerMessages(phone).map((m) => m.text)).toEqual(['hello crew', 'second']);
  });
});

describe.each(['lid', 'pn'] as const)('a member writes to the group (%s addressing)', (addressingMode) => {
  const base = addressingMode === 'lid' ? '1555730' : '1555740';
  test("the account's Baileys reads it from the group with the member as participant, and its receipt names the member", async () => {
    const me = `${base}0001`;
    const member = `${base}0002`;
    const { sock } = await pairAndOpen(env.emulator, me);
    const group = env.emulator.createGroup({ subject: 'Inbound', participants: [member, me], addressingMode });
    const memberJid = group.participants.find((p) => p.phone === member)!.jid;
    const mark = env.emulator.timeline.mark();
    const first = upserted(sock, (m) => m.message?.conversation === 'from the member');
    const sent = await env.emulator.sendGroupInbound({ from: member, group: group.jid, text: 'from the member', to: me });
    expect(sent).toMatchObject({ delivered: true, companions: 1 });
    const message = await first;
    expect(message.key).toMatchObject({ remoteJid: group.jid, participant: memberJid, fromMe: false, id: sent.id });
    await env.emulator.timeline.waitFor({ phone: me, dir: 'in', tag: 'receipt', attrs: { to: group.jid, participant: memberJid, id: sent.id } }, { after: mark });
    expect(env.emulator.sentMessages(member).find((m) => m.id === sent.id)).toMatchObject({ to: group.jid, status: 'delivered' });
    // The first stanza handed the member's sender key over (pkmsg); the next carries the skmsg alone.
    const stanzas = () => env.emulator.timeline.entries({ phone: me, after: mark }).filter((e) => e.dir === 'out' && e.node?.tag === 'message');
    expect(stanzas()[0]!.stanza).toMatch(/type="pkmsg".*type="skmsg"/);
    const next = upserted(sock, (m) => m.message?.conversation === 'again');
    const again = await env.emulator.sendGroupInbound({ from: member, group: group.jid, text: 'again' });
    expect((await next).key.id).toBe(again.id);
    expect(stanzas()[1]!.stanza).not.toContain('pkmsg');
  });
});

test('two accounts in a group: the server relays the sender key and the skmsg to the other account from the group', async () => {
  const alice = await pairAndOpen(env.emulator, '15557500001');
  const bob = await pairAndOpen(env.emulator, '15557500002');
  const group = env.emulator.createGroup({ subject: 'Pair', participants: ['15557500001', '15557500002', '15557500003'] });
  const arrived = upserted(bob.sock, (m) => m.message?.extendedTextMessage?.text === 'hi all');
  const sent = await alice.sock.sendMessage(group.jid, { text: 'hi all' });
  const message = await arrived;
  const aliceLid = group.participants.find((p) => p.phone === '15557500001')!.jid;
  expect(message.key).toMatchObject({ remoteJid: group.jid, id: sent!.key.id, fromMe: false });
  expect(message.key.participant).toBe(aliceLid); // Baileys reports the sender without its device
  await env.emulator.waitForDecrypted('15557500003', (m) => m.id === sent!.key.id);
  await env.emulator.waitForDecrypted('15557500002', (m) => m.id === sent!.key.id);
  // Bob's client receipt is relayed to alice from the group, naming bob.
  const bobLid = group.participants.find((p) => p.phone === '15557500002')!.jid;
  await env.emulator.timeline.waitFor({ phone: '15557500001', dir: 'out', tag: 'receipt', attrs: { from: group.jid, participant: bobLid, id: sent!.key.id! } });
});

test('a member that cannot decrypt sends a retry receipt from the group; Baileys re-sends and the member reads it once', async () => {
  const me = '15557550001';
  const member = '15557550002';
  const texts = new Map<string, string>();
  const { sock } = await pairAndOpen(env.emulator, me, {
    getMessage: async (key) => (key.id && texts.has(key.id) ? { extendedTextMessage: { text: texts.get(key.id)! } } : undefined),
  });
  const group = env.emulator.createGroup({ subject: 'Retry', participants: [me, member] });
  env.emulator.failDecrypt(member);
  const mark = env.emulator.timeline.mark();
  const messageId = '3EB0AAAABBBBCCCCDDDDEEEE';
  texts.set(messageId, 'once more');
  await sock.sendMessage(group.jid, { text: 'once more' }, { messageId });
  const memberJid = group.participants.find((p) => p.phone === member)!.jid;
  await env.emulator.timeline.waitFor({ phone: me, dir: 'out', tag: 'receipt', attrs: { type: 'retry', from: group.jid, participant: memberJid, id: messageId } }, { after: mark });
  expect(await env.emulator.waitForDecrypted(member, (m) => m.id === messageId)).toMatchObject({ text: 'once more', group: group.jid, copies: 1 });
  expect(env.emulator.retryReceiptsSent(member)).toBe(1);
});

describe('w:gp2 notifications', () => {
  test('added and removed members and a new subject reach Baileys as events; the fan-out follows membership', async () => {
    const me = '15557600001';
    const { sock } = await pairAndOpen(env.emulator, me);
    const group = env.emulator.createGroup({ subject: 'Before', participants: [me, '15557600002', '15557600003'] });
    const first = await sock.sendMessage(group.jid, { text: 'to two' });
    await env.emulator.waitForDecrypted('15557600003', (m) => m.id === first!.key.id);

    const removed = nextEvent<{ id: string; action: string; participants: Array<{ id: string }> }>(sock, 'group-participants.update', (e) => e.action === 'remove');
    const added = nextEvent<{ id: string; action: string; participants: Array<{ id: string; phoneNumber?: string }> }>(sock, 'group-participants.update', (e) => e.action === 'add');
    const renamed = nextEvent<Array<{ id: string; subject?: string }>>(sock, 'groups.update', (e) => e.some((u) => u.subject === 'After'));
    const after = env.emulator.updateGroup(group.jid, { remove: ['15557600003'], add: ['15557600004'], subject: 'After' });
    expect(after.participants.map((p) => p.phone)).toEqual([me, '15557600002', '15557600004']);
    expect(await removed).toMatchObject({ id: group.jid, participants: [{ id: group.participants[2]!.jid }] });
    expect((await added).participants[0]).toMatchObject({ phoneNumber: '15557600004@s.whatsapp.net' });
    expect((await renamed)[0]).toMatchObject({ id: group.jid, subject: 'After' });
    expect((await sock.groupMetadata(group.jid)).subject).toBe('After');

    // Baileys (no metadata cache here) asks again: the new member gets the sender key, the removed one nothing.
    const second = await sock.sendMessage(group.jid, { text: 'to the new crew' });
    await env.emulator.waitForDecrypted('15557600004', (m) => m.id === second!.key.id && m.text === 'to the new crew');
    await env.emulator.waitForDecrypted('15557600002', (m) => m.id === second!.key.id);
    expect(env.emulator.peerMessages('15557600003').map((m) => m.text)).toEqual(['to two']);
  });
});

test('control API: create, read and change a group; a member writes to it', async () => {
  const { EmulatorControlClient } = await import('../../src/emulator/index.js');
  const api = new EmulatorControlClient(await env.emulator.startControlApi());
  const me = '15557700001';
  const { sock } = await pairAndOpen(env.emulator, me);
  const created = await api.createGroup({ subject: 'Via API', participants: [me, '+15557700002'], admins: ['15557700002'] });
  expect(created).toMatchObject({ jid: expect.stringMatching(/@g\.us$/), subject: 'Via API', addressingMode: 'lid', creator: '15557700002' });
  expect(created.participants.map((p) => [p.phone, p.admin])).toEqual([[me, null], ['15557700002', 'superadmin']]);
  expect(await api.group(created.jid)).toEqual(created);
  const arrived = upserted(sock, (m) => m.message?.conversation === 'api says hi');
  const sent = await api.groupInbound({ from: '15557700002', group: created.jid, text: 'api says hi' });
  expect((await arrived).key).toMatchObject({ remoteJid: created.jid, id: sent.id });
  const changed = await api.updateGroup(created.jid, { subject: 'Renamed', by: '15557700002' });
  expect(changed.subject).toBe('Renamed');
  const refusals: Array<[() => Promise<unknown>, number, string]> = [
    [() => api.createGroup({ subject: 'x', participants: [] }), 400, 'participants'],
    [() => api.createGroup({ subject: 'x', participants: ['15557700001'], admins: ['15557700009'] }), 400, 'admins'],
    [() => api.createGroup({ subject: 'x', participants: ['12'] }), 400, 'participants[0]'],
    [() => api.group('120363000000000001@g.us'), 404, 'group'],
    [() => api.updateGroup(created.jid, {}), 400, 'body'],
    [() => api.groupInbound({ from: '15557700009', group: created.jid, text: 'x' }), 400, 'from'],
    [() => api.groupInbound({ from: me, group: created.jid, text: 'x' }), 400, 'from'],
    [() => api.groupInbound({ from: '15557700002', group: created.jid, text: 'x', to: '15557700009' }), 400, 'to'],
  ];
  for (const [call, status, field] of refusals) await expect(call()).rejects.toMatchObject({ status, field });
});
