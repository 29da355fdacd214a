// The monitor turns daemon events and outbox checks into alerts (real store, real bus).
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AlertEngine, type AlertNotification, type AlertSink } from '../../src/alerts/engine.js';
import { AlertMonitor, QUEUE_STUCK_MS, RETAIN_FINISHED_MS, STALE_WINDOW_MS } from '../../src/alerts/monitor.js';
import { EventBus } from '../../src/events/bus.js';
import { OutboxStore } from '../../src/outbox/store.js';
import { closeStateDb, openStateDb } from '../../src/store/db.js';
import { tmpDirs } from '../helpers/tmp.js';

const tmp = tmpDirs(afterEach);
const stops: Array<() => void> = [];
afterEach(() => stops.splice(0).forEach((s) => s()));

function setup() {
  const db = openStateDb(tmp());
  const store = new OutboxStore(db);
  const bus = new EventBus();
  const got: AlertNotification[] = [];
  const sink: AlertSink = { name: 'rec', deliver: (n) => got.push(n) };
  let monitor: AlertMonitor | undefined;
  const engine = new AlertEngine({ bus, log: pino({ level: 'silent' }), sinks: [sink], accountState: (a) => monitor?.stateOf(a) });
  monitor = new AlertMonitor({ engine, bus, store, log: pino({ level: 'silent' }) });
  stops.push(() => {
    monitor!.stop();
    engine.stop();
    closeStateDb(db);
  });
  let n = 0;
  const row = (state: 'queued' | 'held', createdAt: number) => {
    const [r] = store.insertMany(
      [
        {
          row: { account: 'a', to: '15550002222@s.whatsapp.net', chatType: 'direct', kind: 'message', text: 't', messageId: `ID${++n}`, state, reason: null, idempotencyKey: null, requestId: null, client: null, expiresAt: null },
          audit: { at: createdAt, account: 'a', recipient: 'x', kind: 'message', decision: 'allow', rule: 'default', reason: 'r', stage: 'enqueue', client: null, requestId: null },
        },
      ],
      createdAt,
    );
    if (!r || 'error' in r) throw new Error('insert failed');
    return r.row;
  };
  return { store, bus, got, monitor, engine, row, codes: () => got.map((n) => `${n.type}:${n.alert.code}`) };
}

describe('AlertMonitor', () => {
  it('needs_pairing only when a close put the account there, and recovered when it opens again', () => {
    const { bus, codes } = setup();
    bus.publish({ type: 'account.state', account: 'a', state: 'needs_pairing', reason: 'not paired yet' });
    expect(codes()).toEqual([]);
    bus.publish({ type: 'account.state', account: 'a', state: 'needs_pairing', close: { code: 401, name: 'loggedOut' } });
    bus.publish({ type: 'account.state', account: 'a', state: 'pairing' });
    bus.publish({ type: 'account.state', account: 'a', state: 'open' });
    expect(codes()).toEqual(['alert:needs_pairing', 'alert.recovered:needs_pairing']);
  });

  it('three stale probes within 10 minutes raise stale_repeating', () => {
    const { bus, codes } = setup();
    bus.publish({ type: 'account.state', account: 'a', state: 'open' });
    for (let i = 0; i < 3; i++) bus.publish({ type: 'account.stale', account: 'a', deadlineMs: 3000 });
    expect(codes()).toEqual(['alert:stale_repeating']);
  });

  it('five retry receipts within 10 minutes raise retries_repeating; four do not; it recovers once they age out', async () => {
    const { bus, codes, monitor } = setup();
    bus.publish({ type: 'account.state', account: 'a', state: 'open' });
    bus.publish({ type: 'account.state', account: 'b', state: 'open' });
    for (let i = 0; i < 4; i++) bus.publish({ type: 'message.retry_requested', account: 'a', messageId: `M${i}` });
    for (let i = 0; i < 4; i++) bus.publish({ type: 'message.retry_requested', account: 'b', messageId: `N${i}` });
    expect(codes()).toEqual([]);
    bus.publish({ type: 'message.retry_requested', account: 'a', messageId: 'M4' });
    expect(codes()).toEqual(['alert:retries_repeating']);
    await monitor.check(Date.now() + STALE_WINDOW_MS + 1);
    expect(codes()).toEqual(['alert:retries_repeating', 'alert.recovered:retries_repeating']);
  });

  it('a queued row older than the limit while the account is open is a stuck queue (after its time-to-visible)', async () => {
    const { bus, row, monitor, engine } = setup();
    bus.publish({ type: 'account.state', account: 'a', state: 'open' });
    const now = Date.now();
    row('queued', now - QUEUE_STUCK_MS - 1000);
    await monitor.check(now);
    expect(engine.active()).toEqual([]); // pending: the condition must hold for a minute first
    bus.publish({ type: 'account.state', account: 'a', state: 'needs_pairing', close: { code: 401 } });
    await monitor.check(now);
    expect(engine.active().map((a) => a.code)).toEqual(['needs_pairing']); // the stuck queue is moot now
  });

  it('a stuck queue is raised once its time-to-visible passes; only accounts the kept counts show rows for are looked at', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { bus, row, monitor, store, codes } = setup();
      for (let i = 0; i < 50; i++) bus.publish({ type: 'account.state', account: i === 0 ? 'a' : `idle${i}`, state: 'open' });
      const now = Date.now();
      row('queued', now - QUEUE_STUCK_MS - 1000);
      const looked = vi.spyOn(store, 'stateAge');
      await monitor.check(now);
      expect(looked.mock.calls.map(([account, state]) => `${account}:${state}`)).toEqual(['a:queued']);
      vi.advanceTimersByTime(60_000);
      expect(codes()).toEqual(['alert:queue_stuck']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('failed and expired messages are reported, except operator alerts themselves', () => {
    const { bus, codes } = setup();
    bus.publish({ type: 'message.failed', account: 'a', id: 1, state: 'failed', kind: 'message', reason: 'server refused' });
    bus.publish({ type: 'message.expired', account: 'a', id: 2, state: 'expired', kind: 'message' });
    bus.publish({ type: 'message.failed', account: 'a', id: 3, state: 'failed', kind: 'alert' });
    expect(codes()).toEqual(['alert:messages_failed', 'alert:messages_failed']);
  });

  it('the digest reaches the sinks with messages by state and alerts raised', async () => {
    const { bus, row, monitor, got } = setup();
    bus.publish({ type: 'account.state', account: 'a', state: 'open' });
    row('queued', Date.now());
    bus.publish({ type: 'message.failed', account: 'a', id: 9, state: 'failed', kind: 'message' });
    await monitor.sendDigest();
    const digest = got.find((n) => n.type === 'digest')!;
    expect(digest.alert.details).toMatchObject({ messagesByState: { queued: 1 }, alertsRaised: 1 });
    expect(digest.alert.text).toContain('accounts a open');
  });

  it('housekeeping prunes finished rows past the retention only', async () => {
    const { store, row, monitor } = setup();
    const old = Date.now() - RETAIN_FINISHED_MS - 60_000;
    const r = row('queued', old);
    store.transition(r.id, ['queued'], 'cancelled', {}, old);
    row('queued', old); // still queued: kept
    expect(await monitor.housekeeping()).toBe(1);
    expect(store.list({ limit: 10 }).map((x) => x.state)).toEqual(['queued']);
  });
});
