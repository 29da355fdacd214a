// Every spelling of a person (issue 13), with real Baileys in the daemon and the emulator's peers
// as the truth. An account with a deny rule for a number gets sends addressed to that person's
// LID before it has learnt the mapping, by API and CLI; an account with a rule naming the LID gets
// sends to the number. A control account without peer rules reaches the person by the same LID,
// so only the policy stands in between: nothing refused may arrive. The rule for the number is
// added by a reload while a row to the LID waits, so the send-time check is met first.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST_CONFIG, senders, startWorld, type World } from '../helpers/world.js';

const GUARDED = '15550001111';
const LID_RULE = '15550001112';
const CONTROL = '15550001113';
const PERSON = '15550004444';
/** The LID the emulator gives PERSON (lidFor in src/emulator/world.ts); the black-box test's. */
const PERSON_LID = '177290488036108@lid';
const SOMEONE = '15550005555';
const LID_SPELLINGS = ['177290488036108@lid', '177290488036108:2@lid', '177290488036108@LID'];

let world: World;
const config = (url: string, numberRule: boolean) => ({
  policy: {
    default: 'allow',
    rules: [
      ...(numberRule ? [{ action: 'deny', name: 'blocked-number', match: { account: 'guarded', peer: '+1 555 000 4444' } }] : []),
      { action: 'deny', name: 'blocked-lid', match: { account: 'lidrule', peer: PERSON_LID } },
    ],
  },
  accounts: [
    { id: 'guarded', wsUrl: url },
    { id: 'lidrule', wsUrl: url },
    { id: 'control', wsUrl: url },
  ],
});

beforeAll(async () => {
  world = await startWorld({ config: (url) => config(url, false) });
  await world.pair('guarded', GUARDED);
  await world.pair('lidrule', LID_RULE);
  await world.pair('control', CONTROL);
  // The emulator creates a peer (and its LID) on first mention: PERSON writes to the control
  // account only, so guarded and lidrule have learnt nothing about PERSON.
  const from = world.events.length;
  await world.emulator.sendInbound({ from: PERSON, to: CONTROL, text: 'hello' });
  await world.waitEvent((e) => e.type === 'message.inbound' && e.account === 'control', { from });
}, 60_000);
afterAll(async () => {
  await world?.close();
});

const { viaApi, viaCli } = senders(() => world);
const rowsOf = async (account: string) =>
  (await world.client.request<{ messages: Array<{ id: number; state: string; text: string }> }>('GET', `/v1/messages?account=${account}&limit=500`)).body.messages;

describe('replay', () => {
  // Before: this row was sent when the account came back (the rule matched the number only).
  it('a row to the LID queued before the rule for the number is refused when sent after the reload; the number could not be resolved', async () => {
    world.emulator.injectFault(GUARDED, { kind: 'upgrade-refused', code: 503 });
    world.emulator.injectFault(GUARDED, { kind: 'close' });
    await world.waitState('guarded', 'reconnecting');
    const queued = await viaApi('guarded', PERSON_LID, 'written before the rule');
    expect(queued.state).toBe('queued');
    const from = world.events.length;
    writeFileSync(world.configFile, JSON.stringify({ stateDir: join(world.dir, 'state'), socket: world.socket, ...FAST_CONFIG, ...config(world.emulator.url, true) }));
    world.daemon.child.kill('SIGHUP');
    await world.waitEvent((e) => e.type === 'daemon.reloaded', { from });
    world.emulator.clearFaults(GUARDED);
    await world.waitState('guarded', 'open');
    const denied = await world.waitEvent((e) => e.type === 'message.denied' && e.id === queued.id, { from });
    expect(denied.reason).toMatch(/its phone number could not be resolved, so blocked-number/);
    const audit = (await world.client.request<{ audit: Array<{ outboxId: number; stage: string; rule: string }> }>('GET', '/v1/audit?limit=500')).body.audit;
    expect(audit.find((e) => e.outboxId === queued.id && e.stage === 'send')).toMatchObject({ rule: 'blocked-number' });
  });
});

describe('a deny rule for a number, sends to the LID before the account has learnt it', () => {
  it.each([
    ['socket API', viaApi],
    ['CLI', viaCli],
  ])('%s: every LID spelling is denied, saying the number could not be resolved', async (entry, send) => {
    for (const to of LID_SPELLINGS) {
      const r = await send('guarded', to, `${entry} to ${to}`);
      expect(r, to).toMatchObject({ state: 'denied' });
      expect(r.reason).toBe(`${PERSON_LID}: its phone number could not be resolved, so blocked-number (which names numbers) cannot be checked; refused`);
    }
    expect(await send('guarded', PERSON, `${entry} to the number`)).toMatchObject({ state: 'denied', reason: 'deny by blocked-number' });
  });
});

describe('a deny rule for a LID, sends to the number', () => {
  it('the number is resolved to its LID by the server (usync) and denied by the LID rule; another number still goes out', async () => {
    expect(await viaApi('lidrule', PERSON, 'api to the number')).toMatchObject({ state: 'denied', reason: 'deny by blocked-lid' });
    expect(await viaCli('lidrule', '+1 555-000-4444', 'cli to the number')).toMatchObject({ state: 'denied', reason: 'deny by blocked-lid' });
    const ok = await viaApi('lidrule', SOMEONE, 'to someone else');
    expect(ok.state).toBe('queued');
    await world.waitEvent((e) => e.type === 'message.delivered' && e.id === ok.id);
    expect(world.emulator.peerMessages(SOMEONE).map((m) => m.text)).toEqual(['to someone else']);
  });
});

describe('what reached the person', () => {
  it('only the control account\'s message, sent to the same LID; every refused row stays denied', async () => {
    const control = await viaApi('control', '177290488036108:2@lid', 'control by LID');
    expect(control.state).toBe('queued');
    await world.waitEvent((e) => e.type === 'message.delivered' && e.id === control.id);
    expect(world.emulator.peerMessages(PERSON).map((m) => m.text)).toEqual(['control by LID']);
    expect((await rowsOf('guarded')).map((r) => r.state)).toEqual(Array(9).fill('denied'));
    expect((await rowsOf('lidrule')).filter((r) => r.state !== 'denied').map((r) => r.text)).toEqual(['to someone else']);
  });
});
