// The policy matrix: every entry point (socket API, CLI, replay of queued rows) against a deny
// rule, an allowTo miss, a hold, and shadow mode. The emulator's peers are the truth: nothing
// refused may ever reach one.
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST_CONFIG, senders, startWorld, type World } from '../helpers/world.js';

const MAIN = '15550001111';
const SHADOW = '15550001112';
const ALLOWED = '15550005000';
const DENIED_BY_RULE = '15550005001';
const NOT_ON_LIST = '15550005009';
const HELD = '15550005003';
const SHADOW_PEER = '15550005010';

let world: World;
const config = (url: string, extraRules: unknown[] = []) => ({
  policy: {
    default: 'allow',
    rules: [
      ...extraRules,
      { action: 'deny', name: 'blocked-peer', match: { peer: `+${DENIED_BY_RULE}` } },
      { action: 'hold', name: 'needs-approval', match: { peer: HELD } },
      { action: 'deny', name: 'shadow-mode', match: { account: 'shadow', chatType: 'direct' } },
    ],
  },
  accounts: [
    { id: 'main', wsUrl: url, allowTo: [ALLOWED, `${DENIED_BY_RULE}@s.whatsapp.net`, HELD] },
    { id: 'shadow', wsUrl: url },
  ],
});

beforeAll(async () => {
  world = await startWorld({ config: (url) => config(url) });
  await world.pair('main', MAIN);
  await world.pair('shadow', SHADOW);
}, 60_000);
afterAll(async () => {
  await world?.close();
});

const { viaApi, viaCli } = senders(() => world);

describe.each([
  ['socket API', viaApi],
  ['CLI', viaCli],
])('entry point: %s', (entry, send) => {
  it('deny rule, allowTo miss and shadow mode are stored as denied with the reason; hold is held; nothing reaches those peers', async () => {
    const denied = await send('main', DENIED_BY_RULE, `${entry} to blocked`);
    expect(denied).toMatchObject({ state: 'denied', reason: 'deny by blocked-peer' });
    const offList = await send('main', `+1 555 000 5009`, `${entry} to invented number`);
    expect(offList).toMatchObject({ state: 'denied', reason: `${NOT_ON_LIST}@s.whatsapp.net is not in allowTo of account main` });
    const shadow = await send('shadow', SHADOW_PEER, `${entry} reply in shadow mode`);
    expect(shadow).toMatchObject({ state: 'denied', reason: 'deny by shadow-mode' });
    const held = await send('main', HELD, `${entry} draft`);
    expect(held).toMatchObject({ state: 'held', reason: 'hold by needs-approval' });
    const ok = await send('main', ALLOWED, `${entry} allowed`);
    expect(ok.state).toBe('queued');
    await world.waitEvent((e) => e.type === 'message.delivered' && e.id === ok.id);
    for (const peer of [DENIED_BY_RULE, NOT_ON_LIST, SHADOW_PEER, HELD]) expect(world.emulator.peerMessages(peer)).toEqual([]);
    expect(world.emulator.peerMessages(ALLOWED).map((m) => m.text)).toContain(`${entry} allowed`);
  });
});

describe('operator decisions and the audit', () => {
  it('approve sends a held message; reject refuses one for good; both are audited with who asked', async () => {
    const a = await viaApi('main', HELD, 'approve me');
    const b = await viaApi('main', HELD, 'reject me');
    await world.client.request('POST', `/v1/messages/${a.id}/approve`, undefined, { 'x-request-id': 'op-approve-1' });
    await world.client.request('POST', `/v1/messages/${b.id}/reject`);
    await world.waitEvent((e) => e.type === 'message.delivered' && e.id === a.id);
    expect(world.emulator.peerMessages(HELD).map((m) => m.text)).toEqual(['approve me']);
    expect((await world.client.request<{ state: string }>('GET', `/v1/messages/${b.id}`)).body.state).toBe('denied');
    const audit = (await world.client.request<{ audit: Array<{ decision: string; outboxId: number; client: string; requestId: string; stage: string; rule: string }> }>('GET', '/v1/audit?limit=500')).body.audit;
    expect(audit.find((e) => e.outboxId === a.id && e.decision === 'approve')).toMatchObject({ stage: 'operator', client: 'test', requestId: 'op-approve-1' });
    expect(audit.find((e) => e.outboxId === b.id && e.decision === 'reject')).toMatchObject({ stage: 'operator' });
    expect(audit.find((e) => e.outboxId === a.id && e.decision === 'hold')).toMatchObject({ stage: 'enqueue', rule: 'needs-approval' });
  });

  it('shadow mode still receives: inbound messages reach the shadow account', async () => {
    const from = world.events.length;
    const sent = await world.emulator.sendInbound({ from: SHADOW_PEER, to: SHADOW, text: 'are you there?' });
    const inbound = await world.waitEvent((e) => e.type === 'message.inbound' && e.account === 'shadow', { from });
    expect(inbound).toMatchObject({ id: sent.id, text: 'are you there?', chatType: 'direct', chat: `${SHADOW_PEER}@s.whatsapp.net` });
    expect((await world.account('shadow')).lastInboundAt).not.toBeNull();
    // ...and its reply is still refused.
    expect((await viaApi('shadow', SHADOW_PEER, 'sure!')).state).toBe('denied');
  });
});

describe('replay', () => {
  it('a rule added while rows are queued takes effect when they are sent', async () => {
    // Rows wait while the account cannot connect...
    world.emulator.injectFault(MAIN, { kind: 'upgrade-refused', code: 503 });
    world.emulator.injectFault(MAIN, { kind: 'close' });
    await world.waitState('main', 'reconnecting');
    const queued = await viaApi('main', ALLOWED, 'written before the rule');
    expect(queued.state).toBe('queued');
    // ...the operator adds a rule and restarts the daemon with it...
    writeFileSync(world.configFile, JSON.stringify({ stateDir: join(world.dir, 'state'), socket: world.socket, ...FAST_CONFIG, ...config(world.emulator.url, [{ action: 'deny', name: 'late-rule', match: { peer: ALLOWED } }]) }));
    await world.restartDaemon();
    world.emulator.clearFaults(MAIN);
    await world.waitState('main', 'open');
    await world.waitEvent((e) => e.type === 'message.denied' && e.id === queued.id);
    const row = (await world.client.request<{ state: string; reason: string }>('GET', `/v1/messages/${queued.id}`)).body;
    expect(row).toMatchObject({ state: 'denied', reason: 'deny by late-rule' });
    expect(world.emulator.peerMessages(ALLOWED).map((m) => m.text)).not.toContain('written before the rule');
    const audit = (await world.client.request<{ audit: Array<{ outboxId: number; stage: string; rule: string }> }>('GET', '/v1/audit?limit=500')).body.audit;
    expect(audit.find((e) => e.outboxId === queued.id && e.stage === 'send')).toMatchObject({ rule: 'late-rule' });
  });
});
