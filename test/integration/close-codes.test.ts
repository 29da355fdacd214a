// Every close code of the DESIGN table, against real Baileys in the daemon and the emulator:
// the fault goes in at the emulator, and the daemon's events show the documented state path.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorld, type DaemonEvent, type World } from '../helpers/world.js';

const PHONE = '15550001111';
let world: World;

beforeAll(async () => {
  world = await startWorld({ config: { connectTimeoutMs: 2000 } });
  await world.addAndPair('main', PHONE);
}, 60_000);
afterAll(async () => {
  await world?.close();
});

/** Events about `main` after index `from`. */
function since(from: number): DaemonEvent[] {
  return world.events.slice(from).filter((e) => e.account === 'main');
}

/** Injects a fault while open, waits for the close it causes and for `open` again. */
async function faultAndRecover(fault: Parameters<World['emulator']['injectFault']>[1]) {
  await world.waitState('main', 'open');
  const from = world.events.length;
  const t0 = Date.now();
  world.emulator.injectFault(PHONE, fault);
  const close = await world.waitEvent((e) => e.type === 'account.close' && e.account === 'main', { from });
  const closedAt = Date.now();
  await world.waitEvent((e) => e.type === 'account.state' && e.account === 'main' && e.state === 'open', { from });
  return { close, events: since(from), detectMs: closedAt - t0, recoverMs: Date.now() - t0 };
}

describe('close codes that reconnect', () => {
  it('515 restartRequired reconnects at once, without a backoff', async () => {
    const r = await faultAndRecover({ kind: 'stream-error', code: 515 });
    expect(r.close).toMatchObject({ code: 515, name: 'restartRequired' });
    expect(r.events.some((e) => e.type === 'account.backoff')).toBe(false);
  });

  it.each([
    [{ kind: 'stream-error', code: 503 } as const, 503, 'unavailableService'],
    [{ kind: 'stream-error', code: 500 } as const, 500, 'badSession'],
    [{ kind: 'close' } as const, 428, 'connectionClosed'],
    [{ kind: 'terminate' } as const, 428, 'connectionClosed'],
    [{ kind: 'xmlstreamend' } as const, 428, 'connectionClosed'],
  ])('%j -> close %s %s, reconnecting with a backoff, open again', async (fault, code, name) => {
    const r = await faultAndRecover(fault);
    expect(r.close).toMatchObject({ code, name });
    const states = r.events.filter((e) => e.type === 'account.state').map((e) => e.state);
    expect(states).toEqual(['reconnecting', 'open']);
    const backoff = r.events.find((e) => e.type === 'account.backoff')!;
    // Full jitter below the ceiling; earlier tests' short-lived connections still count as failures.
    const failures = backoff.failures as number;
    expect(failures).toBeGreaterThanOrEqual(1);
    expect(backoff.delayMs as number).toBeLessThan(Math.min(1000, 200 * 2 ** (failures - 1)));
  });

  it('a black-holed socket is found by the probe within interval + deadline and reopened', async () => {
    const r = await faultAndRecover({ kind: 'black-hole' });
    expect(r.close).toMatchObject({ code: null, name: 'stale' });
    // keepalive 1000 ms + deadline 600 ms, plus scheduling slack
    expect(r.detectMs).toBeLessThan(1000 + 600 + 500);
    expect(r.events.find((e) => e.type === 'account.stale')).toMatchObject({ deadlineMs: 600 });
    expect(r.recoverMs).toBeLessThan(5000);
  });

  it('an app-silent socket (open, nothing answered) is found the same way', async () => {
    const r = await faultAndRecover({ kind: 'app-silent' });
    expect(r.close).toMatchObject({ code: null, name: 'stale' });
    expect(r.detectMs).toBeLessThan(2100);
  });

  it('a refused HTTP upgrade is reported at once with its status, then retried', async () => {
    await world.waitState('main', 'open');
    const from = world.events.length;
    world.emulator.injectFault(PHONE, { kind: 'upgrade-refused', code: 503, times: 2 });
    world.emulator.injectFault(PHONE, { kind: 'close' });
    await world.waitEvent((e) => e.type === 'account.state' && e.account === 'main' && e.state === 'open', { from });
    const closes = since(from).filter((e) => e.type === 'account.close');
    expect(closes.map((e) => [e.code, e.name])).toEqual([
      [428, 'connectionClosed'],
      [503, 'upgrade_refused'],
      [503, 'upgrade_refused'],
    ]);
  });

  it('a login whose <success> never comes is ended by the connect watchdog, then retried', async () => {
    await world.waitState('main', 'open');
    const from = world.events.length;
    world.emulator.injectFault(PHONE, { kind: 'withhold-success', times: 1 });
    world.emulator.injectFault(PHONE, { kind: 'close' });
    const watchdog = await world.waitEvent((e) => e.type === 'account.close' && e.account === 'main' && e.name === 'watchdog', { from });
    expect(watchdog.message).toBe('no open within 2000 ms');
    await world.waitEvent((e) => e.type === 'account.state' && e.account === 'main' && e.state === 'open', { from });
  });
});

describe('close codes that stop and wait for the operator', () => {
  async function expectTerminal(fault: Parameters<World['emulator']['injectFault']>[1], state: string, code: number, trigger?: Parameters<World['emulator']['injectFault']>[1]) {
    await world.waitState('main', 'open');
    const from = world.events.length;
    world.emulator.injectFault(PHONE, fault);
    if (trigger) world.emulator.injectFault(PHONE, trigger);
    await world.waitEvent((e) => e.type === 'account.state' && e.account === 'main' && e.state === state, { from });
    const at = world.events.length;
    const stoppedAt = Date.now();
    // Absence needs a window: three times the largest backoff (1 s) without any new attempt.
    await new Promise((r) => setTimeout(r, 3000));
    expect(since(at).filter((e) => e.type === 'account.state')).toEqual([]);
    const connectsAfter = world.emulator.events.entries().filter((e) => e.at > stoppedAt && /^connected from/.test(e.text));
    expect(connectsAfter).toEqual([]);
    const acc = await world.account('main');
    expect(acc).toMatchObject({ state, lastClose: { code } });
  }

  it('440 (another session replaced this one) -> conflict, zero further attempts; reconnect brings it back', async () => {
    await expectTerminal({ kind: 'replace' }, 'conflict', 440);
    await world.client.request('POST', '/v1/accounts/main/reconnect');
    await world.waitState('main', 'open');
  });

  it('403 at login -> forbidden, zero further attempts', async () => {
    await expectTerminal({ kind: 'failure', code: 403, times: 1 }, 'forbidden', 403, { kind: 'close' });
    await world.client.request('POST', '/v1/accounts/main/reconnect');
    await world.waitState('main', 'open');
  });

  it('401 -> needs_pairing with the creds archived; pairing again brings it back', async () => {
    await expectTerminal({ kind: 'stream-error', code: 401 }, 'needs_pairing', 401);
    expect((await world.account('main')).authSince).toBeNull();
    let scanned = false;
    await world.client.stream(
      '/v1/accounts/main/pair',
      (raw) => {
        const e = raw as { type: string; qr?: string };
        if (e.type === 'qr' && !scanned) {
          scanned = true;
          void world.emulator.pair({ phone: PHONE, qr: e.qr! });
        }
      },
      { method: 'POST', body: {} },
    );
    await world.waitState('main', 'open');
  });
});

describe('nothing reaches a contact', () => {
  it('no message, receipt or chat presence left the account during pairing, faults and reconnects', () => {
    const fromAccount = world.emulator.timeline.entries({ phone: PHONE }).filter((e) => e.dir === 'in');
    const toChats = fromAccount.filter((e) => ['message', 'receipt', 'chatstate'].includes(e.node?.tag ?? ''));
    const presence = fromAccount.filter((e) => e.node?.tag === 'presence' && e.node.attrs.to !== undefined);
    // The filter sees decoded stanzas: the logins' iqs and the keepalive pings are there.
    expect(fromAccount.filter((e) => e.node?.tag === 'iq' && e.node.attrs.xmlns === 'w:p').length).toBeGreaterThan(0);
    expect(fromAccount.filter((e) => e.node?.tag === 'iq' && e.node.attrs.xmlns === 'encrypt').length).toBeGreaterThan(10);
    expect(fromAccount.length).toBeGreaterThan(100); // the suite above did generate traffic
    expect(toChats).toEqual([]);
    expect(presence).toEqual([]);
    expect(world.emulator.sentMessages(PHONE)).toEqual([]);
  });
});

