// The account state machine against a fake connector and a fake clock: every close code of the
// table drives the documented state, with exact event sequences.
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ReconnectGate } from '../../src/accounts/reconnect-gate.js';
import { AccountRunner, type PairEvent, type RunnerSettings } from '../../src/accounts/runner.js';
import { EventBus, type BusEvent } from '../../src/events/bus.js';
import { FakeConnector } from '../fakes/wa-connector.js';

const settings: RunnerSettings = {
  keepalive: { intervalMs: 10_000, idleWindowMs: 900_000, probeDeadlineMs: 2000 },
  reconnect: { initialMs: 1000, maxMs: 8000, factor: 2 },
  connectTimeoutMs: 5000,
  flap: { closes: 3, windowMs: 60_000 },
};

let bus: EventBus;
let events: BusEvent[];
let connector: FakeConnector;
const log = pino({ level: 'silent' });

function runner(id = 'a', gate = new ReconnectGate(10), s: Partial<RunnerSettings> = {}): AccountRunner {
  // random() = 0.5: each backoff is half its ceiling, so timings are exact.
  return new AccountRunner(id, { ...settings, ...s }, { connector, bus, gate, log, random: () => 0.5 });
}
const states = (account = 'a') => events.filter((e) => e.type === 'account.state' && e.account === account).map((e) => e.state);
const tick = () => vi.advanceTimersByTimeAsync(0);

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
  bus = new EventBus();
  events = [];
  bus.subscribe({}, (e) => events.push(e));
  connector = new FakeConnector();
  connector.registered.add('a');
});
afterEach(() => vi.useRealTimers());

describe('AccountRunner', () => {
  it('waits in needs_pairing without connecting when the account was never paired', async () => {
    const r = runner('b');
    r.start();
    await tick();
    expect(r.state).toBe('needs_pairing');
    expect(connector.connections).toHaveLength(0);
  });

  it('connects, opens, and after a 408 backs off with jitter and reconnects', async () => {
    const r = runner();
    r.start();
    await tick();
    expect(r.state).toBe('connecting');
    connector.last.open();
    await tick();
    expect(r.state).toBe('open');
    expect(r.status()).toMatchObject({ jid: '15550001111:1@s.whatsapp.net', reconnect: { failures: 0 } });

    connector.last.close(408, 'connectionLost');
    await tick();
    expect(r.state).toBe('reconnecting');
    expect(r.status().lastClose).toMatchObject({ code: 408, name: 'connectionLost' });
    expect(r.status().reconnect.nextRetryAt).toBe(new Date(500).toISOString()); // half of 1000
    expect(connector.connections).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(500);
    expect(connector.connections).toHaveLength(2);
    connector.last.open();
    await tick();
    expect(states()).toEqual(['connecting', 'open', 'reconnecting', 'open']);
    expect(r.status().closesByCode).toEqual({ '408': 1 });
    await r.stop();
  });

  it('grows the backoff on consecutive failures before open, capped', async () => {
    const r = runner();
    r.start();
    await tick();
    const delays: number[] = [];
    bus.subscribe({ types: ['account.backoff'] }, (e) => delays.push(e.delayMs as number));
    for (let i = 0; i < 5; i++) {
      connector.last.close(503, 'unavailableService');
      await tick();
      await vi.advanceTimersByTimeAsync(delays[delays.length - 1]!);
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 4000]);
    connector.last.open();
    await tick();
    expect(r.status().reconnect.failures).toBe(5);
    await r.stop();
  });

  it('reconnects at once on 515, without a backoff', async () => {
    const r = runner();
    r.start();
    await tick();
    connector.last.open();
    await tick();
    connector.last.close(515, 'restartRequired');
    await tick();
    expect(connector.connections).toHaveLength(2);
    expect(events.some((e) => e.type === 'account.backoff')).toBe(false);
    await r.stop();
  });

  it.each([
    [401, 'loggedOut', 'needs_pairing', true],
    [411, 'multideviceMismatch', 'needs_pairing', true],
    [440, 'connectionReplaced', 'conflict', false],
    [403, 'forbidden', 'forbidden', false],
  ])('%s %s -> %s and no further connection attempts', async (code, name, state, archived) => {
    const r = runner();
    r.start();
    await tick();
    connector.last.open();
    await tick();
    connector.last.close(code, name);
    await tick();
    await vi.advanceTimersByTimeAsync(600_000);
    expect(r.state).toBe(state);
    expect(connector.connections).toHaveLength(1);
    expect(connector.archived.length > 0).toBe(archived);
    expect(events.find((e) => e.type === 'account.state' && e.state === state)).toMatchObject({ close: { code, name } });
  });

  it('a terminal close before open also stops (440 at login)', async () => {
    const r = runner();
    r.start();
    await tick();
    connector.last.close(440, 'connectionReplaced');
    await tick();
    await vi.advanceTimersByTimeAsync(600_000);
    expect(r.state).toBe('conflict');
    expect(connector.connections).toHaveLength(1);
  });

  it('ends an attempt that never opens with the watchdog, then backs off', async () => {
    const r = runner();
    r.start();
    await tick();
    await vi.advanceTimersByTimeAsync(4999);
    expect(connector.last.terminatedWith).toBeNull();
    await vi.advanceTimersByTimeAsync(1);
    expect(connector.last.terminatedWith).toMatchObject({ code: null, name: 'watchdog' });
    expect(r.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(500);
    expect(connector.connections).toHaveLength(2);
    await r.stop();
  });

  it('terminates a deaf socket as stale when the probe misses its deadline, and reconnects', async () => {
    const r = runner();
    r.start();
    await tick();
    connector.last.autoAnswerPings = false;
    connector.last.open();
    await tick();
    await vi.advanceTimersByTimeAsync(10_000); // first probe
    expect(connector.last.pings).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1999);
    expect(r.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1);
    expect(connector.last.terminatedWith).toMatchObject({ name: 'stale', code: null });
    expect(events.find((e) => e.type === 'account.stale')).toMatchObject({ deadlineMs: 2000 });
    expect(r.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(500);
    expect(connector.connections).toHaveLength(2);
    await r.stop();
  });

  it('stop() interrupts a backoff at once', async () => {
    const r = runner(undefined, undefined, { reconnect: { initialMs: 3_600_000, maxMs: 3_600_000, factor: 2 } });
    r.start();
    await tick();
    connector.last.close(503);
    await tick();
    expect(r.state).toBe('reconnecting');
    await r.stop();
    expect(r.state).toBe('stopped');
    await vi.advanceTimersByTimeAsync(10_000_000);
    expect(connector.connections).toHaveLength(1);
  });

  it('reports flapping once, not once per close', async () => {
    const r = runner();
    r.start();
    await tick();
    for (let i = 0; i < 6; i++) {
      connector.last.open();
      await tick();
      await vi.advanceTimersByTimeAsync(1000);
      connector.last.close(428);
      await tick();
      await vi.advanceTimersByTimeAsync(10_000);
    }
    expect(events.filter((e) => e.type === 'account.degraded')).toHaveLength(1);
    expect(r.status().degraded).toMatchObject({ closes: 3 });
    await r.stop();
  });

  it('caps concurrent connection attempts across accounts', async () => {
    connector.registered.add('b');
    const gate = new ReconnectGate(1);
    const a = runner('a', gate);
    const b = runner('b', gate);
    a.start();
    b.start();
    await tick();
    expect(connector.connections.map((c) => c.opts.account)).toEqual(['a']);
    connector.last.open();
    await tick();
    expect(connector.connections.map((c) => c.opts.account)).toEqual(['a', 'b']);
    await a.stop();
    await b.stop();
  });

  it('pairs with a QR: forwards QRs, reconnects on 515, reports paired', async () => {
    const r = runner('new');
    const seen: PairEvent[] = [];
    await r.pair({ phone: undefined, requestId: 'req-1', onEvent: (e) => seen.push(e) });
    await tick();
    expect(r.state).toBe('pairing');
    connector.last.emit({ type: 'qr', qr: 'QR-1' });
    connector.last.emit({ type: 'qr', qr: 'QR-2' });
    connector.registered.add('new');
    connector.last.close(515, 'restartRequired');
    await tick();
    expect(connector.connections).toHaveLength(2);
    connector.last.open('15550009999:3@s.whatsapp.net');
    await tick();
    expect(seen).toEqual([
      { type: 'qr', qr: 'QR-1' },
      { type: 'qr', qr: 'QR-2' },
      { type: 'paired', jid: '15550009999:3@s.whatsapp.net' },
    ]);
    expect(r.state).toBe('open');
    expect(events.find((e) => e.type === 'account.paired')).toMatchObject({ account: 'new', requestId: 'req-1' });
    await r.stop();
  });

  it('pairs with a code when a phone number is given', async () => {
    const r = runner('new');
    const seen: PairEvent[] = [];
    await r.pair({ phone: '15550001234', requestId: undefined, onEvent: (e) => seen.push(e) });
    await tick();
    connector.last.emit({ type: 'qr', qr: 'QR-ignored' });
    await tick();
    expect(seen).toEqual([{ type: 'code', code: 'CODE1234' }]);
    await r.stop();
    expect(seen[seen.length - 1]).toMatchObject({ type: 'error' });
  });

  it('a failed pairing ends in needs_pairing with an error, and is not retried', async () => {
    const r = runner('new');
    const seen: PairEvent[] = [];
    await r.pair({ phone: undefined, requestId: undefined, onEvent: (e) => seen.push(e) });
    await tick();
    connector.last.emit({ type: 'qr', qr: 'QR-1' });
    connector.last.close(408, 'connectionLost', 'QR refs attempts ended');
    await tick();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(r.state).toBe('needs_pairing');
    expect(connector.connections).toHaveLength(1);
    expect(seen[seen.length - 1]).toMatchObject({ type: 'error' });
  });

  it('never shows a QR nobody asked for: an unrequested pairing prompt ends as needs_pairing', async () => {
    const r = runner();
    r.start();
    await tick();
    connector.last.emit({ type: 'qr', qr: 'QR-x' });
    await tick();
    expect(r.state).toBe('needs_pairing');
    expect(connector.archived).toHaveLength(1);
  });
});
