// Groups end to end, for text: the daemon's real Baileys sends to a group through the send gate
// (policy, Baileys' group path with the daemon's metadata cache, the outbox settling on the
// server's ack) and receives a member's group message into the inbox. The emulator's simulated
// members are the truth about who read what.
import { afterEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/index.js';
import { useWorlds, type World } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);
const MAIN = '15550001111';
const MEMBERS = ['15550007001', '15550007002', '15550007003'];

type Accepted = { id: number; messageId: string; state: string; reason?: string };
type Row = { id: string; chat: string; from: string; chatType: string; kind: string; text: string | null; status: string };

async function send(w: World, account: string, to: string, text: string): Promise<Accepted> {
  return (await w.client.request<Accepted>('POST', '/v1/messages', { account, to, text })).body;
}

/** Group metadata queries an account sent for a group, after a timeline cursor. */
function metadataQueries(emulator: Emulator, phone: string, group: string, after = 0): number {
  return emulator.timeline
    .entries({ phone, after })
    .filter((e) => e.dir === 'in' && e.node?.tag === 'iq' && e.node.attrs.xmlns === 'w:g2' && e.node.attrs.to === group).length;
}

/** Every group message the account wrote to the server, after a cursor. */
function groupStanzas(emulator: Emulator, phone: string, after = 0): string[] {
  return emulator.timeline
    .entries({ phone, after })
    .filter((e) => e.dir === 'in' && e.node?.tag === 'message' && (e.node.attrs.to ?? '').endsWith('@g.us'))
    .map((e) => e.node!.attrs.id!);
}

describe('sending to a group', () => {
  it('reaches every simulated member exactly once with the text, settles on the server ack, and asks for the members once', async () => {
    const w = await newWorld({ config: (url) => ({ accounts: [{ id: 'main', wsUrl: url }] }) });
    await w.pair('main', MAIN);
    const group = w.emulator.createGroup({ subject: 'Ops', participants: [MAIN, ...MEMBERS] });
    const mark = w.emulator.timeline.mark();
    const from = w.events.length;
    const first = await send(w, 'main', group.jid, 'first to the group');
    expect(first).toMatchObject({ state: 'queued' });
    await w.waitEvent((e) => e.type === 'message.sent' && e.id === first.id, { from });
    for (const phone of MEMBERS) {
      const got = await w.emulator.waitForDecrypted(phone, (m) => m.id === first.messageId);
      expect(got).toMatchObject({ from: MAIN, group: group.jid, text: 'first to the group', copies: 1 });
    }
    // The account's own phone reads it as sent to the group.
    expect(await w.emulator.waitForDecrypted(MAIN, (m) => m.id === first.messageId, { own: true })).toMatchObject({ destination: group.jid });
    expect(w.events.slice(from).filter((e) => e.id === first.id).map((e) => e.state)).toEqual(['queued', 'sending', 'sent']);

    const second = await send(w, 'main', group.jid, 'second to the group');
    await w.waitEvent((e) => e.type === 'message.sent' && e.id === second.id, { from });
    for (const phone of MEMBERS) await w.emulator.waitForDecrypted(phone, (m) => m.id === second.messageId);
    // Exactly the members read it, once each; nobody else read anything.
    for (const phone of MEMBERS) {
      expect(w.emulator.peerMessages(phone).map((m) => [m.text, m.copies])).toEqual([['first to the group', 1], ['second to the group', 1]]);
    }
    expect(w.emulator.peers().map((p) => p.phone).sort()).toEqual([...MEMBERS].sort());
    // One stanza per send, and the members were asked for once: the second send used the cache.
    expect(groupStanzas(w.emulator, MAIN, mark)).toEqual([first.messageId, second.messageId]);
    expect(metadataQueries(w.emulator, MAIN, group.jid, mark)).toBe(1);
    const row = (await w.client.request<{ state: string; wireSends: number; chatType: string }>('GET', `/v1/messages/${second.id}`)).body;
    expect(row).toMatchObject({ state: 'sent', wireSends: 1 });
  });

  it('a member added later gets the next message: the notification makes the daemon ask for the members again', async () => {
    const w = await newWorld({ config: (url) => ({ accounts: [{ id: 'main', wsUrl: url }] }) });
    await w.pair('main', MAIN);
    const group = w.emulator.createGroup({ subject: 'Growing', participants: [MAIN, MEMBERS[0]!] });
    const before = await send(w, 'main', group.jid, 'before the join');
    await w.emulator.waitForDecrypted(MEMBERS[0]!, (m) => m.id === before.messageId);
    const mark = w.emulator.timeline.mark();
    w.emulator.updateGroup(group.jid, { add: [MEMBERS[1]!] });
    // The daemon's Baileys has handled the notification once it acknowledges it.
    await w.emulator.timeline.waitFor({ phone: MAIN, dir: 'in', tag: 'ack', attrs: { class: 'notification' } }, { after: mark });
    const after = await send(w, 'main', group.jid, 'after the join');
    expect(await w.emulator.waitForDecrypted(MEMBERS[1]!, (m) => m.id === after.messageId)).toMatchObject({ text: 'after the join', copies: 1 });
    await w.emulator.waitForDecrypted(MEMBERS[0]!, (m) => m.id === after.messageId);
    expect(w.emulator.peerMessages(MEMBERS[1]!).map((m) => m.text)).toEqual(['after the join']);
    expect(metadataQueries(w.emulator, MAIN, group.jid, mark)).toBe(1);
    expect(w.emulator.retryReceiptsSent(MEMBERS[1]!)).toBe(0);
  });

  it('a member whose phone could not decrypt asks again from the group and reads the very text once', async () => {
    const w = await newWorld({ config: (url) => ({ accounts: [{ id: 'main', wsUrl: url }] }) });
    await w.pair('main', MAIN);
    const group = w.emulator.createGroup({ subject: 'Retry', participants: [MAIN, ...MEMBERS.slice(0, 2)] });
    w.emulator.failDecrypt(MEMBERS[0]!);
    const from = w.events.length;
    const res = await send(w, 'main', group.jid, 'say that again');
    await w.waitEvent((e) => e.type === 'message.retry_requested' && e.messageId === res.messageId, { from });
    expect(await w.emulator.waitForDecrypted(MEMBERS[0]!, (m) => m.id === res.messageId)).toMatchObject({ text: 'say that again', copies: 1 });
    expect(w.emulator.retryReceiptsSent(MEMBERS[0]!)).toBe(1);
    // Asked by a member's phone (device 0), Baileys sends the message to the whole group again with
    // the same id: the other member reads one message from two wire copies.
    expect(groupStanzas(w.emulator, MAIN)).toEqual([res.messageId, res.messageId]);
    await w.emulator.waitForDecrypted(MEMBERS[1]!, (m) => m.id === res.messageId && m.copies === 2);
    expect(w.emulator.peerMessages(MEMBERS[1]!).map((m) => m.text)).toEqual(['say that again']);
  });

  it('a group the account is not in fails at once, with nothing written', async () => {
    const w = await newWorld({ config: (url) => ({ accounts: [{ id: 'main', wsUrl: url }] }) });
    await w.pair('main', MAIN);
    const group = w.emulator.createGroup({ subject: 'Not ours', participants: MEMBERS });
    const mark = w.emulator.timeline.mark();
    const res = await send(w, 'main', group.jid, 'let me in');
    const failed = await w.waitEvent((e) => e.type === 'message.failed' && e.id === res.id);
    expect(failed.reason).toMatch(/^permanent error: not sent: the group metadata query for \d+@g\.us failed: forbidden \(403\)$/);
    expect(failed.wireSends).toBe(0);
    expect(groupStanzas(w.emulator, MAIN, mark)).toEqual([]);
    for (const phone of MEMBERS) expect(w.emulator.peerMessages(phone)).toEqual([]);
  });
});

describe('the policy on group sends', () => {
  const GROUP_IDS = { nogroups: '120363100000000001', shadow: '120363100000000002', listed: '120363100000000003', listedOk: '120363100000000004' };
  const PHONES = { nogroups: '15550001121', shadow: '15550001122', listed: '15550001123' };
  const DIRECT_PEER = '15550007100';

  it('a chatType group deny rule, shadow mode and an allowTo without the group refuse group sends; nothing reaches any member', async () => {
    const w = await newWorld({
      config: (url) => ({
        policy: {
          default: 'allow',
          rules: [
            { action: 'deny', name: 'no-groups', match: { account: 'nogroups', chatType: 'group' } },
            { action: 'deny', name: 'shadow-mode', match: { account: 'shadow' } },
          ],
        },
        accounts: [
          { id: 'nogroups', wsUrl: url },
          { id: 'shadow', wsUrl: url },
          { id: 'listed', wsUrl: url, allowTo: [`${GROUP_IDS.listedOk}@g.us`] },
        ],
      }),
    });
    for (const [id, phone] of Object.entries(PHONES)) await w.pair(id, phone);
    const members = (i: number) => [`1555000720${i}`, `1555000721${i}`];
    const groups = {
      nogroups: w.emulator.createGroup({ id: GROUP_IDS.nogroups, subject: 'a', participants: [PHONES.nogroups, ...members(1)] }),
      shadow: w.emulator.createGroup({ id: GROUP_IDS.shadow, subject: 'b', participants: [PHONES.shadow, ...members(2)] }),
      listed: w.emulator.createGroup({ id: GROUP_IDS.listed, subject: 'c', participants: [PHONES.listed, ...members(3)] }),
      listedOk: w.emulator.createGroup({ id: GROUP_IDS.listedOk, subject: 'd', participants: [PHONES.listed, ...members(4)] }),
    };
    const mark = w.emulator.timeline.mark();

    expect(await send(w, 'nogroups', groups.nogroups.jid, 'group from nogroups')).toMatchObject({ state: 'denied', reason: 'deny by no-groups' });
    expect(await send(w, 'shadow', groups.shadow.jid, 'group in shadow mode')).toMatchObject({ state: 'denied', reason: 'deny by shadow-mode' });
    expect(await send(w, 'listed', groups.listed.jid, 'group off the list')).toMatchObject({
      state: 'denied',
      reason: `${groups.listed.jid} is not in allowTo of account listed`,
    });
    // What is allowed still goes: the group rule leaves direct chats alone, and a listed group is reached.
    const direct = await send(w, 'nogroups', DIRECT_PEER, 'direct from nogroups');
    const listedOk = await send(w, 'listed', groups.listedOk.jid, 'group on the list');
    await w.waitEvent((e) => e.type === 'message.delivered' && e.id === direct.id);
    await w.waitEvent((e) => e.type === 'message.sent' && e.id === listedOk.id);
    for (const phone of members(4)) await w.emulator.waitForDecrypted(phone, (m) => m.id === listedOk.messageId);

    for (const i of [1, 2, 3]) for (const phone of members(i)) expect(w.emulator.peerMessages(phone), phone).toEqual([]);
    expect(w.emulator.peers().map((p) => p.phone).sort()).toEqual([DIRECT_PEER, ...members(4)].sort());
    // No refused account wrote any group stanza, nor asked for any group's members.
    for (const phone of [PHONES.nogroups, PHONES.shadow]) expect(groupStanzas(w.emulator, phone, mark)).toEqual([]);
    expect(groupStanzas(w.emulator, PHONES.listed, mark)).toEqual([listedOk.messageId]);
    for (const g of [groups.nogroups, groups.shadow, groups.listed]) {
      for (const phone of Object.values(PHONES)) expect(metadataQueries(w.emulator, phone, g.jid, mark)).toBe(0);
    }
  });
});

describe('receiving from a group', () => {
  async function inbox(w: World): Promise<Row[]> {
    return (await w.client.request<{ messages: Row[] }>('GET', '/v1/inbox?status=all&limit=1000')).body.messages;
  }

  it.each(['pn', 'lid'] as const)('a member\'s message (%s addressing) is stored once, from the member, in the group chat', async (addressingMode) => {
    const w = await newWorld({ config: (url) => ({ accounts: [{ id: 'main', wsUrl: url }] }) });
    await w.pair('main', MAIN);
    const group = w.emulator.createGroup({ subject: 'Inbound', participants: [MEMBERS[0]!, MAIN, MEMBERS[1]!], addressingMode });
    const member = group.participants.find((p) => p.phone === MEMBERS[0])!;
    const from = w.events.length;
    const sent = await w.emulator.sendGroupInbound({ from: MEMBERS[0]!, group: group.jid, text: 'hello from a member', to: MAIN });
    const event = await w.waitEvent((e) => e.type === 'message.inbound' && e.id === sent.id, { from });
    expect(event).toMatchObject({ chat: group.jid, from: member.jid, chatType: 'group', text: 'hello from a member' });
    // The same message again on the wire (a redelivery) is the same row.
    const mark = w.emulator.timeline.mark();
    await w.emulator.sendGroupInbound({ from: MEMBERS[0]!, group: group.jid, text: 'hello from a member', id: sent.id });
    await w.emulator.timeline.waitFor({ phone: MAIN, dir: 'in', tag: 'receipt', attrs: { to: group.jid, participant: member.jid, id: sent.id } }, { after: mark });
    const rows = (await inbox(w)).filter((r) => r.id === sent.id);
    expect(rows).toEqual([expect.objectContaining({ chat: group.jid, from: member.jid, chatType: 'group', kind: 'text', text: 'hello from a member', status: 'ok' })]);
    expect(member.jid).toBe(addressingMode === 'pn' ? `${MEMBERS[0]}@s.whatsapp.net` : member.lid);
    expect(w.emulator.sentMessages(MEMBERS[0]!).find((m) => m.id === sent.id)?.status).toBe('delivered');
    expect(w.events.filter((e) => e.type === 'message.inbound' && e.id === sent.id)).toHaveLength(1);
  });
});
