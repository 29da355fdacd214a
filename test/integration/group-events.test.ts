// Group notifications as events, end to end: the emulator changes a group the daemon's account is
// in (as a member acting on the server), the daemon's Baileys reads the w:gp2 notifications, and
// GET /v1/events shows group.participants and group.updated once each, to the operator and to a
// client of that account, never to a client of another account.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/control/client.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { useWorlds, type DaemonEvent, type World } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);
const MAIN = '15550001111';
const OTHER = '15550001112';
const CREATOR = '15550007001';
const MEMBER = '15550007002';
const JOINER = '15550007003';
const MAIN_TOKEN = 'wst_main-token-for-the-group-events-test-0123456789';
const OTHER_TOKEN = 'wst_other-token-for-the-group-events-test-0123456789';
const sha = (t: string) => createHash('sha256').update(t).digest('hex');

const dirs: Array<{ cleanup: () => void }> = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.cleanup();
});

/** A client's event stream, recorded, with a wait for an event (seen or to come). */
async function follow(client: ControlClient): Promise<{ events: DaemonEvent[]; waitFor: (pred: (e: DaemonEvent) => boolean) => Promise<DaemonEvent>; close: () => Promise<void> }> {
  const events: DaemonEvent[] = [];
  const waiters = new Set<{ pred: (e: DaemonEvent) => boolean; resolve: (e: DaemonEvent) => void }>();
  const abort = new AbortController();
  let opened!: () => void;
  const open = new Promise<void>((r) => (opened = r));
  const done = client
    .stream(
      '/v1/events',
      (raw) => {
        const e = raw as DaemonEvent;
        events.push(e);
        for (const w of waiters) {
          if (!w.pred(e)) continue;
          waiters.delete(w);
          w.resolve(e);
        }
      },
      { signal: abort.signal, onOpen: () => opened() },
    )
    .catch(() => {});
  await Promise.race([open, done]);
  return {
    events,
    waitFor: (pred) => {
      const found = events.find(pred);
      return found ? Promise.resolve(found) : new Promise((resolve) => waiters.add({ pred, resolve }));
    },
    close: async () => {
      abort.abort();
      await done;
    },
  };
}

const isGroupEvent = (e: DaemonEvent) => e.type.startsWith('group.');

describe('group notifications as events', () => {
  it('members added and removed and a new subject are published once each, to the account\'s own clients only', async () => {
    const sockDir = makeTmpDir('wag-');
    dirs.push(sockDir);
    const clientSocket = join(sockDir.dir, 'c', 'clients.sock');
    const w: World = await newWorld({
      config: (url) => ({
        clientSocket,
        clients: [
          { name: 'main-bot', tokenSha256: sha(MAIN_TOKEN), accounts: ['main'] },
          { name: 'other-bot', tokenSha256: sha(OTHER_TOKEN), accounts: ['other'] },
        ],
        accounts: [
          { id: 'main', wsUrl: url },
          { id: 'other', wsUrl: url },
        ],
      }),
    });
    await w.pair('main', MAIN);
    await w.pair('other', OTHER);
    const socket = { path: clientSocket, source: 'flag' as const };
    const mainBot = await follow(new ControlClient({ socket, token: MAIN_TOKEN }));
    const otherBot = await follow(new ControlClient({ socket, token: OTHER_TOKEN }));

    // CREATOR made the group (and acts in every change); MAIN is a member.
    const group = w.emulator.createGroup({ subject: 'Ops', participants: [CREATOR, MAIN, MEMBER] });
    const jidOf = (summary: typeof group, phone: string) => summary.participants.find((p) => p.phone === phone)!.jid;
    const author = jidOf(group, CREATOR);
    const from = w.events.length;
    const ofGroup = (e: DaemonEvent) => e.account === 'main' && e.group === group.jid;

    const afterAdd = w.emulator.updateGroup(group.jid, { add: [JOINER] });
    const joiner = jidOf(afterAdd, JOINER);
    const added = await w.waitEvent((e) => ofGroup(e) && e.type === 'group.participants' && e.action === 'add', { from });
    expect(added).toMatchObject({ type: 'group.participants', account: 'main', group: group.jid, action: 'add', participants: [joiner], author });

    const member = jidOf(group, MEMBER);
    w.emulator.updateGroup(group.jid, { remove: [MEMBER] });
    const removed = await w.waitEvent((e) => ofGroup(e) && e.type === 'group.participants' && e.action === 'remove', { from });
    expect(removed).toMatchObject({ account: 'main', group: group.jid, action: 'remove', participants: [member], author });

    w.emulator.updateGroup(group.jid, { subject: 'Ops, renamed' });
    const renamed = await w.waitEvent((e) => ofGroup(e) && e.type === 'group.updated', { from });
    // Only what changed: the subject (and who changed it), nothing else of the group's settings.
    expect(renamed).toEqual({ type: 'group.updated', account: 'main', group: group.jid, subject: 'Ops, renamed', author, at: expect.any(String), seq: expect.any(Number) });

    // The account's own client saw the same three.
    const strip = ({ at: _a, seq: _s, ...rest }: DaemonEvent) => rest;
    await mainBot.waitFor((e) => ofGroup(e) && e.type === 'group.updated');
    expect(mainBot.events.filter(isGroupEvent).map(strip)).toEqual([added, removed, renamed].map(strip));

    // A later change to a group only OTHER is in: a client sees its events in publication order,
    // so once other-bot has this one, anything of main's would already have reached it.
    const marker = w.emulator.createGroup({ subject: 'Other only', participants: [CREATOR, OTHER] });
    w.emulator.updateGroup(marker.jid, { subject: 'Other only, renamed' });
    const mark = await otherBot.waitFor((e) => e.type === 'group.updated' && e.group === marker.jid);
    expect(mark).toMatchObject({ account: 'other', subject: 'Other only, renamed' });
    expect(otherBot.events.filter((e) => e.account !== 'other')).toEqual([]);
    expect(otherBot.events.filter((e) => e.group === group.jid)).toEqual([]);
    // Nor did main's own client see the other account's group.
    expect(mainBot.events.filter((e) => e.account !== 'main')).toEqual([]);

    // Once each on the operator stream (the marker came after all of them).
    await w.waitEvent((e) => e.account === 'other' && e.group === marker.jid, { from });
    const seen = w.events.slice(from).filter((e) => ofGroup(e) && isGroupEvent(e));
    expect(seen.map((e) => [e.type, e.action ?? e.subject])).toEqual([
      ['group.participants', 'add'],
      ['group.participants', 'remove'],
      ['group.updated', 'Ops, renamed'],
    ]);

    // A phone-number-addressed group names its members by number.
    const pnGroup = w.emulator.createGroup({ subject: 'Old style', participants: [CREATOR, MAIN], addressingMode: 'pn' });
    const pnFrom = w.events.length;
    w.emulator.updateGroup(pnGroup.jid, { add: [JOINER] });
    const pnAdded = await w.waitEvent((e) => e.account === 'main' && e.group === pnGroup.jid && e.type === 'group.participants', { from: pnFrom });
    expect(pnAdded).toMatchObject({ action: 'add', participants: [`${JOINER}@s.whatsapp.net`], author: `${CREATOR}@s.whatsapp.net` });

    await mainBot.close();
    await otherBot.close();
  });
});
