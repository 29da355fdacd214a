import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AlertEngine, type AlertNotification, type AlertSink } from '../../src/alerts/engine.js';
import { ALERT_KINDS } from '../../src/alerts/kinds.js';
import { EventBus, type BusEvent } from '../../src/events/bus.js';

class RecordingSink implements AlertSink {
  readonly got: AlertNotification[] = [];
  constructor(readonly name = 'rec') {}
  deliver(n: AlertNotification): void {
    this.got.push(n);
  }
}

const log = pino({ level: 'silent' });
let sink: RecordingSink;
let events: BusEvent[];
let states: Map<string, string>;
function engine(capPerHour?: number): AlertEngine {
  const bus = new EventBus();
  events = [];
  bus.subscribe({ types: ['alert', 'alert.*'] }, (e) => events.push(e));
  return new AlertEngine({ bus, log, sinks: [sink], ...(capPerHour ? { capPerHour } : {}), accountState: (a) => states.get(a) });
}

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
  sink = new RecordingSink();
  states = new Map();
});
afterEach(() => vi.useRealTimers());

describe('AlertEngine', () => {
  it('declares every kind with a code, severity, texts and a time-to-visible', () => {
    expect([...ALERT_KINDS.keys()].sort()).toEqual(
      ['config_reload_failed', 'conflict', 'daemon_crashed', 'degraded', 'event_loop_stalled', 'forbidden', 'messages_failed', 'needs_pairing', 'queue_stuck', 'reconnecting_long', 'retries_repeating', 'stale_repeating', 'unknown_unsettled', 'consumer_stuck', 'store_unreachable', 'lease_lost'].sort(),
    );
    for (const k of ALERT_KINDS.values()) expect(k.text({ account: 'a' })).toMatch(/\w/);
  });

  it('a lease lost to a fence that ran past its margin says the lease may have expired first; one on time does not', () => {
    const lost = ALERT_KINDS.get('lease_lost')!;
    expect(lost.text({ account: 'a', reason: 'fenced', fenceLateMs: 3, pastMargin: false })).not.toMatch(/late|expired/);
    expect(lost.text({ account: 'a', reason: 'fenced', fenceLateMs: 2700, pastMargin: true })).toMatch(/fence ran 2700 ms late, past the margin .*may have expired before the socket closed/);
  });

  it('says nothing before the time-to-visible, then once, then recovered once', async () => {
    const e = engine();
    e.set('reconnecting_long', 'a', true, { lastClose: '408' });
    await vi.advanceTimersByTimeAsync(119_999);
    expect(sink.got).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    e.set('reconnecting_long', 'a', true); // still holding: no second alert
    expect(sink.got.map((n) => [n.type, n.alert.code, n.alert.account])).toEqual([['alert', 'reconnecting_long', 'a']]);
    expect(e.active()).toHaveLength(1);
    e.set('reconnecting_long', 'a', false);
    e.set('reconnecting_long', 'a', false);
    expect(sink.got.map((n) => n.type)).toEqual(['alert', 'alert.recovered']);
    expect(sink.got[1]!.alert.text).toBe('account a is connected again');
    expect(e.active()).toEqual([]);
    expect(events.map((ev) => ev.type)).toEqual(['alert', 'alert.recovered']);
  });

  it('a blip shorter than the time-to-visible is no alert and has no recovery', async () => {
    const e = engine();
    e.set('reconnecting_long', 'a', true);
    await vi.advanceTimersByTimeAsync(3000);
    e.set('reconnecting_long', 'a', false);
    await vi.advanceTimersByTimeAsync(600_000);
    expect(sink.got).toEqual([]);
  });

  it('keeps secondary alerts quiet while the account is in a terminal state', async () => {
    const e = engine();
    states.set('a', 'needs_pairing');
    e.set('queue_stuck', 'a', true, { ageMs: 600_000 });
    await vi.advanceTimersByTimeAsync(120_000);
    e.once('messages_failed', 'a', { id: 1 }); // not suppressed: failures are news
    expect(sink.got.map((n) => n.alert.code)).toEqual(['messages_failed']);
  });

  it('caps notifications per sink per hour; the log and event stream still get them', async () => {
    const e = engine(2);
    for (let i = 0; i < 5; i++) e.once('messages_failed', 'a', { id: i });
    expect(sink.got).toHaveLength(2);
    expect(events).toHaveLength(5);
    await vi.advanceTimersByTimeAsync(3_600_001);
    e.once('messages_failed', 'a', { id: 9 });
    expect(sink.got).toHaveLength(3);
  });

  it('keys conditions per account', () => {
    const e = engine();
    e.set('conflict', 'a', true);
    e.set('conflict', 'b', true);
    e.set('conflict', 'a', true);
    expect(sink.got.map((n) => n.alert.account)).toEqual(['a', 'b']);
    expect(sink.got[0]!.alert).toMatchObject({ severity: 'critical', text: expect.stringContaining('replaced by another session (440)') });
  });
});
