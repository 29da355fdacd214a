// A server that answers every connect with 515 (restart required): real Baileys in the daemon, the
// emulator re-arming the stream error for each next login. The first 515 reconnects at once; the
// next ones back off and make the account degraded, instead of a tight loop that never shows.
import { afterEach, describe, expect, it } from 'vitest';
import { useWorlds } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);

/** Polls a condition of the in-process emulator, which has no event for a session's end. */
async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
}
const PHONE = '15550001515';

describe('515 on every connect', () => {
  it('reconnects at once once, then backs off, and reports the account degraded with the 515s', async () => {
    const world = await newWorld({ config: { flap: { closes: 3, windowMs: 60_000 } } });
    await world.addAndPair('main', PHONE);
    const from = world.events.length;
    const closes = (e: { type: string; account?: string; code?: unknown }) => e.type === 'account.close' && e.account === 'main' && e.code === 515;
    // Sessions the emulator has sent a stream error to.
    const errored = () =>
      new Set(world.emulator.timeline.entries({ phone: PHONE }).filter((e) => e.dir === 'out' && e.node?.tag === 'stream:error').map((e) => e.session));
    for (let i = 0; i < 4; i++) {
      const at = world.events.length;
      // Fires at once on a live connection, else right after the next login's <success>.
      world.emulator.injectFault(PHONE, { kind: 'stream-error', code: 515 });
      await world.waitEvent(closes, { from: at });
      // The emulator keeps an errored session until its socket closes; a fault injected before
      // then would land on that dying session instead of being armed for the next login.
      await until(() => {
        const dying = errored();
        return !world.emulator.connections(PHONE).some((c) => dying.has(c.id));
      });
    }
    const degraded = await world.waitEvent((e) => e.type === 'account.degraded' && e.account === 'main', { from });
    expect(degraded).toMatchObject({ closes: 3, codes: [515, 515, 515] });
    await world.waitState('main', 'open');
    const seen = world.events.slice(from).filter((e) => e.account === 'main' && (e.type === 'account.close' || e.type === 'account.backoff'));
    // close, (at once) close, backoff, close, backoff, close, backoff
    expect(seen.map((e) => e.type)).toEqual([
      'account.close',
      'account.close',
      'account.backoff',
      'account.close',
      'account.backoff',
      'account.close',
      'account.backoff',
    ]);
    expect(seen.filter((e) => e.type === 'account.backoff').map((e) => e.failures)).toEqual([1, 2, 3]);
    expect((await world.account('main')).degraded).toMatchObject({ codes: [515, 515, 515] });
  });
});
