// Accounts added at runtime keep a policy of their own, and an id removed from the config cannot
// come back through the API with its old creds but without its old allowTo.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError } from '../../src/control/client.js';
import { FAST_CONFIG, useWorlds, type World } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);
const PHONE = '15550001111';
const RT_PHONE = '15550001122';
const ALLOWED = '15550007000';
const STRANGER = '15550007009';

type Accepted = { id: number; state: string; reason?: string };
const send = async (w: World, account: string, to: string, text: string) => (await w.client.request<Accepted>('POST', '/v1/messages', { account, to, text })).body;
async function refusal(p: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiError) return { status: err.status, message: err.message };
    throw err;
  }
  throw new Error('expected the call to be refused');
}

describe('runtime accounts', () => {
  it('an id removed from the config does not come back with its old creds and no allowTo; fresh pairs anew', async () => {
    const w = await newWorld({ config: (url) => ({ accounts: [{ id: 'guarded', wsUrl: url, allowTo: [ALLOWED] }] }) });
    await w.pair('guarded', PHONE);
    // the operator drops it from the config...
    writeFileSync(w.configFile, JSON.stringify({ stateDir: join(w.dir, 'state'), socket: w.socket, ...FAST_CONFIG, accounts: [] }));
    const from = w.events.length;
    w.daemon.child.kill('SIGHUP');
    await w.waitEvent((e) => e.type === 'daemon.reloaded', { from });
    // ...and someone adds it back at runtime, without its allowTo
    const refused = await refusal(w.client.request('POST', '/v1/accounts', { id: 'guarded', wsUrl: w.emulator.url }));
    expect(refused.status).toBe(409);
    expect(refused.message).toContain('removed from the config');
    expect((await w.client.request<{ accounts: Array<{ id: string }> }>('GET', '/v1/accounts')).body.accounts).toEqual([]);
    // fresh: the old creds are archived, so the account must pair again instead of logging in
    const added = (await w.client.request<{ state: string }>('POST', '/v1/accounts', { id: 'guarded', wsUrl: w.emulator.url, fresh: true })).body;
    expect(added.state).toBe('needs_pairing');
    expect((await w.account('guarded')).state).toBe('needs_pairing');
  });

  it('a runtime account is given allowTo and rules by an operator; they hold before it connects and across a restart', async () => {
    const w = await newWorld({ config: () => ({ accounts: [] }) });
    await w.client.request('POST', '/v1/accounts', { id: 'rt', wsUrl: w.emulator.url, allowTo: [ALLOWED] });
    await w.pair('rt', RT_PHONE);
    expect(await send(w, 'rt', STRANGER, 'not on the list')).toMatchObject({ state: 'denied' });
    const ok = await send(w, 'rt', ALLOWED, 'on the list');
    await w.waitEvent((e) => e.type === 'message.delivered' && e.id === ok.id);
    // a rule only for this account, set later
    const put = await w.client.request<{ account: string; rules: unknown[] }>('PUT', '/v1/accounts/rt/policy', { allowTo: [ALLOWED], rules: [{ action: 'hold', name: 'check-first', match: { peer: ALLOWED } }] });
    expect(put.body).toMatchObject({ account: 'rt', rules: [{ action: 'hold' }] });
    expect(await send(w, 'rt', ALLOWED, 'now held')).toMatchObject({ state: 'held', reason: 'hold by check-first' });
    // a rule naming another account is refused, so a runtime account's rules stay its own
    expect((await refusal(w.client.request('PUT', '/v1/accounts/rt/policy', { rules: [{ action: 'allow', match: { account: 'other' } }] }))).status).toBe(400);
    await w.restartDaemon();
    await w.waitState('rt', 'open');
    expect(await send(w, 'rt', STRANGER, 'after restart')).toMatchObject({ state: 'denied' });
    expect(await send(w, 'rt', ALLOWED, 'after restart')).toMatchObject({ state: 'held' });
    expect(w.emulator.peerMessages(STRANGER)).toEqual([]);
    expect(w.emulator.peerMessages(ALLOWED).map((m) => m.text)).toEqual(['on the list']);
  });
});
