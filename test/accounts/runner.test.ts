// The account state machine against a fake connector and a fake clock: every close code of the
// table drives the documented state, with exact event sequences.
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Semaphore } from '../../src/semaphore.js';
import { RESTART_WINDOW_MS } from '../../src/accounts/restart-guard.js';
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

function runner(id = 'a', gate = new Semaphore(10), s: Partial<RunnerSettings> = {}): AccountRunner {
  // random() = 0.5: each backoff is half its ceiling, so timings are exact.
  return new AccountRunner(id, { ...settings, ...s }, { connector, bus, gate, log, random: () => 0.5 });
}
const states = (account = 'a') => events.filter((e) => e.type === 'account.state' && e.account === account).map((e) => e.state);
const tick = () => vi.advanceTimersByTimeAsync(0);
/** Lets `n` microtasks run without any time passing. */
async function microtasks(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}
/** Stops the runner and asserts it is stopped with no time passing (no timer, watchdog or backoff waited out). */
async function expectStopsAtOnce(r: AccountRunner): Promise<void> {
  const t0 = Date.now();
  let done = false;
  void r.stop().then(() => (done = true));
  for (let i = 0; i < 5 && !done; i++) await tick();
  expect(done).toBe(true);
  expect(Date.now()).toBe(t0);
  expect(r.state).toBe('stopped');
  // Nothing of the stopped loop is left: no connection stays up, none is made later.
  const own = () => connector.connections.filter((c) => c.opts.account === r.id);
  const made = own().length;
  await vi.advanceTimersByTimeAsync(600_000);
  expect(own()).toHaveLength(made);
  expect(own().every((c) => c.closed)).toBe(true);
}

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
    await vi.advanceTimersByTimeAsync(2); // the deadline, then one turn of I/O before the verdict
    expect(connector.last.terminatedWith).toMatchObject({ name: 'stale', code: null });
    expect(events.find((e) => e.type === 'account.stale')).toMatchObject({ deadlineMs: 2000 });
    expect(r.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(500);
    expect(connector.connections).toHaveLength(2);
    await r.stop();
  });

  it('status shows the last stanza of any kind sent (lastStanzaSentAt) beside the last probe (lastSentAt)', async () => {
    const r = runner();
    r.start();
    await tick();
    connector.last.open();
    await tick();
    expect(r.status().keepalive).toMatchObject({ lastSentAt: null, lastStanzaSentAt: null });
    await vi.advanceTimersByTimeAsync(3000);
    connector.last.emit({ type: 'stanza_out' }); // the connection wrote a stanza (a message, a receipt)
    expect(r.status().keepalive).toMatchObject({ lastSentAt: null, lastStanzaSentAt: new Date(3000).toISOString() });
    await vi.advanceTimersByTimeAsync(7000); // first probe at 10 s
    expect(r.status().keepalive).toMatchObject({ lastSentAt: new Date(10_000).toISOString(), lastStanzaSentAt: new Date(10_000).toISOString() });
    // Kept after the connection closes, like the other traffic figures.
    connector.last.close(428);
    await tick();
    expect(r.status().keepalive).toMatchObject({ lastStanzaSentAt: new Date(10_000).toISOString() });
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
    const gate = new Semaphore(1);
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

describe('stop() returns at once in every phase of the connect loop', () => {
  it('start and stop in the same tick', async () => {
    const r = runner();
    r.start();
    await expectStopsAtOnce(r);
  });

  // Every microtask boundary of the first connect, from start() up to the connection attempt.
  it.each(Array.from({ length: 8 }, (_, i) => i))('stop %i microtasks after start', async (n) => {
    const r = runner();
    r.start();
    await microtasks(n);
    await expectStopsAtOnce(r);
  });

  it('stop while the connection attempt waits for open', async () => {
    const r = runner();
    r.start();
    await tick();
    expect(connector.connections).toHaveLength(1);
    await expectStopsAtOnce(r);
    expect(connector.last.terminatedWith).toMatchObject({ name: 'local' });
  });

  it('stop while waiting for a slot of the reconnect cap', async () => {
    connector.registered.add('b');
    const gate = new Semaphore(1);
    const a = runner('a', gate);
    const b = runner('b', gate);
    a.start();
    b.start();
    await tick();
    expect(connector.connections.map((c) => c.opts.account)).toEqual(['a']);
    await expectStopsAtOnce(b);
    await a.stop();
  });

  // Every microtask boundary between `open` and the loop watching the open connection.
  it.each(Array.from({ length: 8 }, (_, i) => i))('stop %i microtasks after open', async (n) => {
    const r = runner();
    r.start();
    await tick();
    connector.last.open();
    await microtasks(n);
    await expectStopsAtOnce(r);
    expect(r.status().connectedSince).toBeNull();
  });

  it('stop while open', async () => {
    const r = runner();
    r.start();
    await tick();
    connector.last.open();
    await tick();
    expect(r.state).toBe('open');
    await expectStopsAtOnce(r);
  });

  it.each(Array.from({ length: 6 }, (_, i) => i))('stop %i microtasks after a close before open (on the way into backoff)', async (n) => {
    const r = runner(undefined, undefined, { reconnect: { initialMs: 3_600_000, maxMs: 3_600_000, factor: 2 } });
    r.start();
    await tick();
    connector.last.close(503, 'unavailableService');
    await microtasks(n);
    await expectStopsAtOnce(r);
  });

  it.each(Array.from({ length: 6 }, (_, i) => i))('stop %i microtasks after a 515 (on the way into the next attempt)', async (n) => {
    const r = runner();
    r.start();
    await tick();
    connector.last.open();
    await tick();
    connector.last.close(515, 'restartRequired');
    await microtasks(n);
    await expectStopsAtOnce(r);
  });
});

describe('a server that answers every connect with 515', () => {
  const backoffs = () => events.filter((e) => e.type === 'account.backoff');

  it.each([
    ['before open', false],
    ['right after open', true],
  ])('%s: the first 515 reconnects at once, the next ones back off and make the account degraded', async (_label, openFirst) => {
    const r = runner();
    r.start();
    await tick();
    for (let i = 0; i < 5; i++) {
      if (openFirst) {
        connector.last.open();
        await tick();
      }
      const before = connector.connections.length;
      connector.last.close(515, 'restartRequired');
      await tick();
      if (i === 0) {
        expect(connector.connections).toHaveLength(before + 1); // at once
        expect(backoffs()).toHaveLength(0);
        continue;
      }
      expect(connector.connections).toHaveLength(before); // waiting
      expect(r.state).toBe('reconnecting');
      const delay = backoffs().at(-1)!.delayMs as number;
      expect(backoffs().at(-1)).toMatchObject({ failures: i });
      await vi.advanceTimersByTimeAsync(delay);
      expect(connector.connections).toHaveLength(before + 1);
    }
    expect(backoffs().map((e) => e.delayMs)).toEqual([500, 1000, 2000, 4000]);
    const degraded = events.filter((e) => e.type === 'account.degraded');
    expect(degraded).toHaveLength(1);
    expect(degraded[0]).toMatchObject({ closes: 3, codes: [515, 515, 515] });
    expect(r.status().closesByCode).toEqual({ '515': 5 });
    await r.stop();
  });

  it('a 515 a whole window after the previous one reconnects at once again', async () => {
    const r = runner();
    r.start();
    await tick();
    connector.last.open();
    await tick();
    connector.last.close(515, 'restartRequired');
    await tick();
    connector.last.open();
    await vi.advanceTimersByTimeAsync(RESTART_WINDOW_MS);
    connector.last.close(515, 'restartRequired');
    await tick();
    expect(connector.connections).toHaveLength(3);
    expect(backoffs()).toHaveLength(0);
    await r.stop();
  });

  it('the 515 that completes a pairing does not count: a 515 soon after the first login still reconnects at once', async () => {
    const r = runner('new');
    await r.pair({ phone: undefined, requestId: undefined, onEvent: () => {} });
    await tick();
    connector.last.emit({ type: 'qr', qr: 'QR-1' });
    connector.registered.add('new');
    connector.last.close(515, 'restartRequired');
    await tick();
    connector.last.open();
    await tick();
    expect(r.state).toBe('open');
    connector.last.close(515, 'restartRequired');
    await tick();
    expect(connector.connections).toHaveLength(3);
    expect(backoffs()).toHaveLength(0);
    await r.stop();
  });

  it('a pairing soon after a 515 of the old session still completes through its own 515', async () => {
    const r = runner();
    r.start();
    await tick();
    connector.last.open();
    await tick();
    connector.last.close(515, 'restartRequired');
    await tick();
    connector.last.close(401, 'loggedOut');
    await tick();
    expect(r.state).toBe('needs_pairing');
    const seen: PairEvent[] = [];
    await r.pair({ phone: undefined, requestId: undefined, onEvent: (e) => seen.push(e) });
    await tick();
    connector.last.emit({ type: 'qr', qr: 'QR-1' });
    connector.registered.add('a');
    connector.last.close(515, 'restartRequired');
    await tick();
    connector.last.open();
    await tick();
    expect(r.state).toBe('open');
    expect(seen.at(-1)).toMatchObject({ type: 'paired' });
    expect(backoffs()).toHaveLength(0);
    await r.stop();
  });

  it('a pairing that gets 515 again and again ends in needs_pairing instead of looping', async () => {
    const r = runner('new');
    const seen: PairEvent[] = [];
    await r.pair({ phone: undefined, requestId: undefined, onEvent: (e) => seen.push(e) });
    await tick();
    connector.last.close(515, 'restartRequired');
    await tick();
    expect(connector.connections).toHaveLength(2);
    connector.last.close(515, 'restartRequired');
    await tick();
    await vi.advanceTimersByTimeAsync(600_000);
    expect(connector.connections).toHaveLength(2);
    expect(r.state).toBe('needs_pairing');
    expect(seen.at(-1)).toMatchObject({ type: 'error' });
  });
});

describe('status at many accounts', () => {
  it('reads when the creds were made once, not at every status; new creds are read again', async () => {
    const spy = vi.spyOn(connector, 'authCreatedAt');
    const r = runner();
    r.start();
    await tick();
    for (let i = 0; i < 100; i++) r.status();
    expect(spy).toHaveBeenCalledTimes(1);
    connector.connections[0]!.emit({ type: 'creds_saved' });
    r.status();
    r.status();
    expect(spy).toHaveBeenCalledTimes(2);
    await expectStopsAtOnce(r);
  });

  it('statusJson is status() as JSON after every change, and the same text while nothing changed', async () => {
    const r = runner();
    const same = () => {
      const text = r.statusJson();
      expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(r.status())));
      expect(r.statusJson()).toBe(text); // kept, not built again
      return text;
    };
    const seen = new Set<string>([same()]);
    const changed = () => {
      const text = same();
      expect(seen.has(text)).toBe(false); // a change shows at once
      seen.add(text);
    };
    r.start();
    await tick();
    changed(); // connecting
    connector.last.open();
    await tick();
    changed(); // open
    await vi.advanceTimersByTimeAsync(10_000);
    changed(); // a probe sent and answered
    await vi.advanceTimersByTimeAsync(5);
    connector.last.emit({ type: 'stanza_out' });
    changed();
    connector.last.emit({ type: 'stanza_in' });
    changed();
    connector.last.emit({ type: 'retry_requested', messageId: 'M1', from: '15550002222@s.whatsapp.net', count: 1 });
    changed();
    connector.last.emit({ type: 'creds_saved' });
    same();
    connector.last.close(408, 'connectionLost');
    await tick();
    changed(); // lastClose, closesByCode, reconnecting
    await r.stop();
    changed();
  });
});
