// SIGHUP: the config is re-read without dropping connections; a broken file is refused.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST_CONFIG, startWorld, type World } from '../helpers/world.js';

const MAIN = '15550001111';
const PEER = '15550007777';
let world: World;

const configWith = (extra: Record<string, unknown>) =>
  JSON.stringify({
    stateDir: join(world.dir, 'state'),
    socket: world.socket,
    ...FAST_CONFIG,
    accounts: [{ id: 'main', wsUrl: world.emulator.url }],
    ...extra,
  });

beforeAll(async () => {
  world = await startWorld({ config: (url) => ({ accounts: [{ id: 'main', wsUrl: url }] }) });
  await world.pair('main', MAIN);
}, 60_000);
afterAll(async () => {
  await world?.close();
});

type Accepted = { id: number; state: string; reason?: string };
const send = async (text: string) => (await world.client.request<Accepted>('POST', '/v1/messages', { account: 'main', to: PEER, text })).body;

describe('SIGHUP', () => {
  it('applies a new policy and keepalive to the next send without the account leaving open', async () => {
    const ok = await send('before the reload');
    await world.waitEvent((e) => e.type === 'message.delivered' && e.id === ok.id);
    const before = await world.account('main');
    const from = world.events.length;
    writeFileSync(world.configFile, configWith({ keepalive: { intervalMs: 500, probeDeadlineMs: 300 }, policy: { rules: [{ action: 'deny', name: 'no-peer', match: { peer: PEER } }] } }));
    world.daemon.child.kill('SIGHUP');
    await world.waitEvent((e) => e.type === 'daemon.reloaded', { from });
    expect(await send('after the reload')).toMatchObject({ state: 'denied', reason: 'deny by no-peer' });
    const after = await world.account('main');
    expect(after).toMatchObject({ state: 'open', connectedSince: before.connectedSince });
    expect(after.keepalive!.intervalMs).toBe(500);
    expect(world.events.slice(from).filter((e) => e.type === 'account.state' || e.type === 'account.close')).toEqual([]);
  });

  it('refuses a broken config with an alert and keeps the old one', async () => {
    const from = world.events.length;
    writeFileSync(world.configFile, '{ "accounts": [ { "id": "main", "colour": 1 } ] }');
    world.daemon.child.kill('SIGHUP');
    const failed = await world.waitEvent((e) => e.type === 'daemon.reload_failed', { from });
    expect(String(failed.error)).toContain('accounts[0].colour: unknown key');
    const alert = await world.waitEvent((e) => e.type === 'alert', { from });
    expect(alert.alert).toMatchObject({ code: 'config_reload_failed' });
    expect(await send('old policy still in force')).toMatchObject({ state: 'denied', reason: 'deny by no-peer' });
    expect((await world.account('main')).state).toBe('open');
  });

  it('starts an account added to the config and stops one removed from it', async () => {
    let from = world.events.length;
    writeFileSync(world.configFile, configWith({ accounts: [{ id: 'main', wsUrl: world.emulator.url }, { id: 'second', wsUrl: world.emulator.url }] }));
    world.daemon.child.kill('SIGHUP');
    const reloaded = await world.waitEvent((e) => e.type === 'daemon.reloaded', { from });
    expect(reloaded).toMatchObject({ added: ['second'], removed: [] });
    expect((await world.account('second')).state).toBe('needs_pairing');
    from = world.events.length;
    writeFileSync(world.configFile, configWith({}));
    world.daemon.child.kill('SIGHUP');
    expect(await world.waitEvent((e) => e.type === 'daemon.reloaded', { from })).toMatchObject({ added: [], removed: ['second'] });
    await expect(world.account('second')).rejects.toMatchObject({ status: 404 });
    expect((await world.account('main')).state).toBe('open');
  });
});
