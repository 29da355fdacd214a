// The keepalive against the server's idle rule, the isolation of accounts from each other's
// faults, and flap detection: real Baileys in the daemon, the emulator as the server.
import { afterEach, describe, expect, it } from 'vitest';
import { useWorlds } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);

const IDLE_MS = 600;

describe('keepalive and the server idle window', () => {
  it('with a keepalive at a third of the idle window, no idle close happens over 10 windows', async () => {
    const world = await newWorld({ config: { keepalive: { intervalMs: IDLE_MS / 3, probeDeadlineMs: 150, idleWindowMs: IDLE_MS } } });
    await world.addAndPair('main', '15550001111');
    world.emulator.setIdleWindow(IDLE_MS, '15550001111');
    const from = world.events.length;
    const opened = (await world.account('main')).connectedSince;
    // The claim is an absence over a span, so the test waits out the span itself.
    await new Promise((r) => setTimeout(r, 10 * IDLE_MS));
    expect(world.events.slice(from).filter((e) => e.type === 'account.close')).toEqual([]);
    const acc = await world.account('main');
    expect(acc).toMatchObject({ state: 'open', connectedSince: opened });
    expect(acc.keepalive!.probesSent).toBeGreaterThanOrEqual(25);
    expect(acc.keepalive!.probesMissed).toBe(0);
    expect(acc.keepalive!.largestSilentGapMs).toBeLessThan(IDLE_MS);
    expect(world.emulator.events.entries('15550001111').filter((e) => /idle/.test(e.text))).toEqual([]);
  });

  it('with the keepalive off, the server closes the idle session at the window (so the keepalive is what saves it)', async () => {
    const world = await newWorld({ config: { keepalive: { intervalMs: 0, idleWindowMs: IDLE_MS } } });
    await world.addAndPair('main', '15550001111');
    const from = world.events.length;
    world.emulator.setIdleWindow(IDLE_MS, '15550001111');
    const t0 = Date.now();
    const close = await world.waitEvent((e) => e.type === 'account.close' && e.account === 'main', { from, timeoutMs: 10_000 });
    const after = Date.now() - t0;
    expect(after).toBeGreaterThanOrEqual(IDLE_MS - 50);
    expect(after).toBeLessThan(IDLE_MS + 1500);
    expect(close.code).not.toBeNull();
    expect(world.emulator.events.entries('15550001111').some((e) => /idle: no application stanza for 600 ms/.test(e.text))).toBe(true);
    // And it keeps happening: a metronome of idle closes, each followed by a reconnect.
    await world.waitEvent((e) => e.type === 'account.close' && e.account === 'main', { from: world.events.indexOf(close) + 1, timeoutMs: 10_000 });
  });
});

describe('isolation between accounts', () => {
  it('faults on one account never move the other four out of open', async () => {
    const world = await newWorld();
    const phones = ['15550000101', '15550000102', '15550000103', '15550000104', '15550000105'];
    for (const [i, phone] of phones.entries()) await world.addAndPair(`acc${i + 1}`, phone);
    const others = ['acc2', 'acc3', 'acc4', 'acc5'];
    const before = await Promise.all(others.map((id) => world.account(id)));
    const from = world.events.length;
    const faults = [
      { kind: 'stream-error', code: 503 },
      { kind: 'close' },
      { kind: 'black-hole' },
      { kind: 'stream-error', code: 515 },
      { kind: 'terminate' },
    ] as const;
    for (const fault of faults) {
      await world.waitState('acc1', 'open');
      const at = world.events.length;
      world.emulator.injectFault(phones[0]!, fault);
      await world.waitEvent((e) => e.type === 'account.close' && e.account === 'acc1', { from: at });
    }
    await world.waitState('acc1', 'open');
    const touched = world.events.slice(from).filter((e) => e.account !== undefined && others.includes(e.account) && e.type.startsWith('account.'));
    expect(touched).toEqual([]);
    const after = await Promise.all(others.map((id) => world.account(id)));
    expect(after.map((a) => [a.state, a.connectedSince])).toEqual(before.map((a) => ['open', a.connectedSince]));
  });
});

describe('flap detection', () => {
  it('reports one degraded event for repeated closes, with the regular interval when they are regular', async () => {
    const world = await newWorld({ config: { flap: { closes: 4, windowMs: 60_000 } } });
    await world.addAndPair('main', '15550001111');
    const from = world.events.length;
    const gapMs = 1200;
    for (let i = 0; i < 6; i++) {
      await world.waitState('main', 'open');
      world.emulator.injectFault('15550001111', { kind: 'close' });
      // Regular closes are the point of this test: the fault goes in on a fixed schedule.
      await new Promise((r) => setTimeout(r, gapMs));
    }
    const degraded = world.events.slice(from).filter((e) => e.type === 'account.degraded');
    expect(degraded).toHaveLength(1);
    expect(degraded[0]).toMatchObject({ account: 'main', closes: 4, windowMs: 60_000 });
    expect(degraded[0]!.regularIntervalMs as number).toBeGreaterThan(gapMs * 0.9);
    expect(degraded[0]!.regularIntervalMs as number).toBeLessThan(gapMs * 1.1);
    expect((await world.account('main')).degraded).toMatchObject({ closes: 4 });
  });
});
