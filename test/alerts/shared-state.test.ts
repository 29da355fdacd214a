// Alert state shared by a cluster's daemons, on a real PostgreSQL server: two engines (two daemons)
// on one store. An account's condition seen by both is one alert and one recovered notice; a
// daemon's own condition is its own; the hourly cap counts both daemons' notifications; a
// condition another daemon still sees is adopted, one nobody refreshes any more is raised anew;
// and with the store unreachable each daemon notifies alone, alert and recovered notice, rather
// than lose either.
import pino from 'pino';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AlertEngine, type AlertNotification, type AlertSink, type SharedAlertState } from '../../src/alerts/engine.js';
import { PgAlertState } from '../../src/alerts/pg-alert-state.js';
import { migratedPostgres } from '../helpers/postgres.js';

const db = migratedPostgres({ beforeAll, afterAll });
const engines: AlertEngine[] = [];
afterEach(async () => {
  engines.splice(0).forEach((e) => e.stop());
  await db.pool.query('TRUNCATE wa_alerts_active, wa_alert_sends');
});

const STALE_MS = 60_000;

/** Ages every raised condition's row past the stale bound, as if no daemon had refreshed it. */
async function ageRows(): Promise<void> {
  await db.pool.query("UPDATE wa_alerts_active SET seen_at = now() - interval '2 minutes'");
}

/** Ages the rows by half the stale bound (still fresh), and waits until a refresh has made them new again. */
async function refreshedAfterAging(): Promise<boolean> {
  await db.pool.query("UPDATE wa_alerts_active SET seen_at = now() - interval '30 seconds'");
  const fresh = async () => (await db.pool.query("SELECT count(*)::int AS n FROM wa_alerts_active WHERE seen_at > now() - interval '10 seconds'")).rows[0].n > 0;
  for (let i = 0; i < 2000 && !(await fresh()); i++) await new Promise((r) => setImmediate(r));
  return fresh();
}

function daemon(
  id: string,
  opts: { capPerHour?: number; pool?: pg.Pool; refreshMs?: number; owns?: (account: string) => boolean; shared?: SharedAlertState } = {},
): { engine: AlertEngine; got: AlertNotification[] } {
  const got: AlertNotification[] = [];
  const sink: AlertSink = { name: 'ops', deliver: (n) => void got.push(n) };
  const engine = new AlertEngine({
    bus: { publish: () => ({}) as never },
    log: pino({ level: 'silent' }),
    sinks: [sink],
    ...(opts.capPerHour ? { capPerHour: opts.capPerHour } : {}),
    accountState: () => 'open',
    shared: opts.shared ?? new PgAlertState(opts.pool ?? db.pool, { daemon: id, staleMs: STALE_MS }),
    ...(opts.refreshMs ? { refreshMs: opts.refreshMs } : {}),
    ...(opts.owns ? { owns: opts.owns } : {}),
  });
  engines.push(engine);
  return { engine, got };
}

const codes = (got: AlertNotification[]) => got.map((n) => `${n.type} ${n.alert.code}${n.alert.account ? ` ${n.alert.account}` : ''}`);

describe('alert state shared by a cluster', () => {
  it("an account's condition seen by two daemons is one alert, and one recovered notice", async () => {
    const [a, b] = [daemon('A'), daemon('B')];
    a.engine.set('conflict', 'acc1', true);
    await a.engine.settled();
    b.engine.set('conflict', 'acc1', true); // the new owner sees it too
    await b.engine.settled();
    expect([...codes(a.got), ...codes(b.got)]).toEqual(['alert conflict acc1']);
    // Both list it, once.
    for (const d of [a, b]) expect((await d.engine.activeInCluster()).map((x) => `${x.code} ${x.account}`)).toEqual(['conflict acc1']);
    b.engine.set('conflict', 'acc1', false);
    await b.engine.settled();
    a.engine.set('conflict', 'acc1', false); // cleared already: no second notice
    await a.engine.settled();
    expect([...codes(a.got), ...codes(b.got)]).toEqual(['alert conflict acc1', 'alert.recovered conflict acc1']);
    expect(await b.engine.activeInCluster()).toEqual([]);
  });

  it("a daemon's own condition is its own: two daemons cut off from the store are two alerts", async () => {
    const [a, b] = [daemon('A'), daemon('B')];
    a.engine.set('event_loop_stalled', undefined, true, { maxMs: 900, thresholdMs: 500 });
    b.engine.set('event_loop_stalled', undefined, true, { maxMs: 800, thresholdMs: 500 });
    await Promise.all([a.engine.settled(), b.engine.settled()]);
    expect([...codes(a.got), ...codes(b.got)]).toEqual(['alert event_loop_stalled', 'alert event_loop_stalled']);
    expect(await a.engine.activeInCluster()).toHaveLength(2);
  });

  it('the hourly cap counts every daemon’s notifications to a sink', async () => {
    const [a, b] = [daemon('A', { capPerHour: 3 }), daemon('B', { capPerHour: 3 })];
    for (let i = 0; i < 2; i++) {
      a.engine.once('lease_lost', `a${i}`, { reason: 'fenced' });
      b.engine.once('lease_lost', `b${i}`, { reason: 'fenced' });
    }
    await Promise.all([a.engine.settled(), b.engine.settled()]);
    expect(a.got.length + b.got.length).toBe(3); // four raised, three sent: the cap is the cluster's
  });

  it('a condition nobody refreshes any more (its daemon died) is not listed, and is raised anew by a daemon that sees it; one still refreshed is adopted', async () => {
    const a = daemon('A', { refreshMs: 20 });
    a.engine.set('conflict', 'acc1', true);
    await a.engine.settled();
    // A keeps its row fresh while it sees the condition.
    expect(await refreshedAfterAging()).toBe(true);
    const b = daemon('B');
    b.engine.set('conflict', 'acc1', true);
    await b.engine.settled();
    expect(codes(b.got)).toEqual([]); // adopted: A still sees it
    // A dies (stops refreshing): the row goes stale, and a third daemon that sees it raises it anew.
    a.engine.stop();
    await ageRows();
    expect(await b.engine.activeInCluster()).toHaveLength(1); // B's own, from memory
    expect(await daemon('probe2').engine.activeInCluster()).toEqual([]);
    const c = daemon('C');
    c.engine.set('conflict', 'acc1', true);
    await c.engine.settled();
    expect(codes(c.got)).toEqual(['alert conflict acc1']);
    c.engine.set('conflict', 'acc1', false);
    await c.engine.settled();
    expect(codes(c.got)).toEqual(['alert conflict acc1', 'alert.recovered conflict acc1']);
  });

  it('with the store unreachable, a daemon notifies alone rather than lose an alert or its recovered notice', async () => {
    const dead = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:1/none', connectionTimeoutMillis: 500 });
    try {
      const a = daemon('A', { pool: dead });
      a.engine.set('store_unreachable', undefined, true, { error: 'connect ECONNREFUSED' });
      await a.engine.settled();
      expect(codes(a.got)).toEqual(['alert store_unreachable']);
      expect((await a.engine.activeInCluster()).map((x) => x.code)).toEqual(['store_unreachable']);
      a.engine.set('store_unreachable', undefined, false);
      await a.engine.settled();
      expect(codes(a.got)).toEqual(['alert store_unreachable', 'alert.recovered store_unreachable']);
    } finally {
      await dead.end();
    }
  });

  it('a daemon that handed an account over stops refreshing its leftover condition, so the new owner raises the next incident', async () => {
    let owned = true;
    const a = daemon('A', { refreshMs: 20, owns: () => owned });
    a.engine.set('degraded', 'acc1', true);
    await a.engine.settled();
    expect(await refreshedAfterAging()).toBe(true);
    owned = false; // handed over; A's local condition stays (nothing clears it there)
    expect(await refreshedAfterAging()).toBe(false);
    await ageRows(); // time passes
    const b = daemon('B');
    b.engine.set('degraded', 'acc1', true);
    await b.engine.settled();
    expect(codes(b.got)).toEqual(['alert degraded acc1']);
  });

  it('an alert raised with the store cut off gets its recovered notice when the store answers again at the clear', async () => {
    const store = new PgAlertState(db.pool, { daemon: 'A', staleMs: STALE_MS });
    let down = true;
    const flaky: SharedAlertState = {
      keyOf: (code, account) => store.keyOf(code, account),
      claim: (key, alert) => (down ? Promise.reject(new Error('connection refused')) : store.claim(key, alert)),
      refresh: (keys) => store.refresh(keys),
      release: (key) => (down ? Promise.reject(new Error('connection refused')) : store.release(key)),
      takeSend: (sink, cap) => store.takeSend(sink, cap),
      active: () => store.active(),
    };
    const a = daemon('A', { shared: flaky });
    a.engine.set('conflict', 'acc1', true);
    await a.engine.settled();
    down = false;
    a.engine.set('conflict', 'acc1', false); // no row was made: the release finds nothing
    await a.engine.settled();
    expect(codes(a.got)).toEqual(['alert conflict acc1', 'alert.recovered conflict acc1']);
  });
});
