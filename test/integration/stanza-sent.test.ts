// keepalive.lastStanzaSentAt against real Baileys: with the keepalive off no probe is ever sent,
// yet the account writes stanzas (its login's iqs, a message), and status shows when it last did.
import { afterEach, describe, expect, it } from 'vitest';
import type { StatusResponse } from '../../src/control/wire.js';
import { useWorlds } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);

describe('keepalive.lastStanzaSentAt', () => {
  it('counts every stanza sent, where lastSentAt counts probes only', async () => {
    const world = await newWorld({ config: { keepalive: { intervalMs: 0 } } });
    await world.addAndPair('main', '15550001112');
    const opened = await world.account('main');
    expect(opened.keepalive).toMatchObject({ lastSentAt: null, probesSent: 0 });

    const before = Date.now();
    const { body } = await world.client.request<{ id: number }>('POST', '/v1/messages', { account: 'main', to: '15550007777', text: 'hello' });
    await world.waitEvent((e) => e.type === 'message.delivered' && e.id === body.id);
    const after = await world.account('main');
    expect(after.keepalive!.lastSentAt).toBeNull();
    expect(Date.parse(after.keepalive!.lastStanzaSentAt!)).toBeGreaterThanOrEqual(before);
    // status (and so `status --json`, which prints this response) carries the same field.
    const status = (await world.client.request<StatusResponse>('GET', '/v1/status')).body;
    expect(status.accounts.find((a) => a.id === 'main')!.keepalive).toMatchObject({ lastSentAt: null, lastStanzaSentAt: expect.any(String) });
  });
});
