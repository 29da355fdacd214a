// The order of a config reload, observed in-process: accounts leaving the config must be stopped
// before the new send policy takes over (under it they have no `allowTo` of their own), and
// accounts joining it start only once that policy is in force.
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { tmpDirs, writeConfig } from '../helpers/tmp.js';

const newDir = tmpDirs(afterEach, 'wro-');
const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

describe('Daemon.reload', () => {
  it('stops removed accounts before the new policy applies, and starts added ones after it', async () => {
    const dir = newDir();
    const base = { stateDir: join(dir, 'state'), socket: join(dir, 'd.sock') };
    const file = writeConfig(dir, {
      ...base,
      policy: { default: 'allow' },
      accounts: [{ id: 'stay' }, { id: 'gone', allowTo: ['15550001111'] }],
    });
    const daemon = await Daemon.start({ loaded: loadConfig(file), log: pino({ level: 'silent' }) });
    stops.push(() => daemon.stop());
    const gone = daemon.accounts.get('gone');
    expect(gone.state).toBe('needs_pairing');

    // What the rest of the daemon looks like at the moment the gate gets the new policy.
    const atSwap: Array<{ goneState: string; goneFound: boolean; addedFound: boolean; allowTo: unknown }> = [];
    const update = daemon.gate.updateSettings.bind(daemon.gate);
    vi.spyOn(daemon.gate, 'updateSettings').mockImplementation((settings) => {
      atSwap.push({
        goneState: gone.state,
        goneFound: daemon.accounts.find('gone') !== undefined,
        addedFound: daemon.accounts.find('added') !== undefined,
        allowTo: settings.policy.allowTo,
      });
      update(settings);
    });
    writeConfig(dir, { ...base, policy: { default: 'allow' }, accounts: [{ id: 'stay' }, { id: 'added' }] });
    expect(await daemon.reload()).toEqual({ ok: true });

    expect(atSwap).toEqual([{ goneState: 'stopped', goneFound: false, addedFound: false, allowTo: {} }]);
    expect(daemon.accounts.find('added')?.state).toBe('needs_pairing');
    expect(daemon.accounts.find('gone')).toBeUndefined();
  });
});
