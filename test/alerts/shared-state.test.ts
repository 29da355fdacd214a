// Alert state shared by a cluster's daemons, on a real PostgreSQL server: two engines (two daemons)
// on one store. An account's condition seen by both is one alert and one recovered notice; a
// daemon's own condition is its own; the hourly cap counts both daemons' notifications; a
// condition raised by a daemon that is gone is adopted, not raised again; and with the store
// unreachable each daemon notifies alone rather than lose an alert.
import pino from 'pino';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AlertEngine, type AlertNotification, type AlertSink } from '../../src/alerts/engine.js';
import { PgAlertState } from '../../src/alerts/pg-alert-state.js';
import { migratedPostgres } from '../helpers/postgres.js';

const db = migratedPostgres({ beforeAll, afterAll });
const engines: AlertEngine[] = [];
afterEach(async () => {
  engines.splice(0).forEach((e) => e.stop());
  await db.pool.query('TRUNCATE wa_alerts_active, wa_alert_sends, wa_daemons');
});

/** A daemon seen just now (or `agoMs` ago) by the cluster. */
async function seen(id: string, agoMs = 0): Promise<void> {
  await db.pool.query(
    `INSERT INTO wa_daemons (id, host, pid, socket, stopping, seen_at) VALUES ($1, 'h', 1, null, false, now() - make_interval(secs => $2::double precision / 1000))
     ON CONFLICT (id) DO UPDATE SET seen_at = EXCLUDED.seen_at`,
    [id, agoMs],
  );
}

function daemon(id: string, opts: { capPerHour?: number; pool?: pg.Pool } = {}): { engine: AlertEngine; got: AlertNotification[] } {
  const got: AlertNotification[] = [];
  const sink: AlertSink = { name: 'ops', deliver: (n) => void got.push(n) };
  const engine = new AlertEngine({
    bus: { publish: () => ({}) as never },
    log: pino({ level: 'silent' }),
    sinks: [sink],
    ...(opts.capPerHour ? { capPerHour: opts.capPerHour } : {}),
    accountState: () => 'open',
    shared: new PgAlertState(opts.pool ?? db.pool, { daemon: id, liveMs: 10_000 }),
  });
  engines.push(engine);
  return { engine, got };
}

const codes = (got: AlertNotification[]) => got.map((n) => `${n.type} ${n.alert.code}${n.alert.account ? ` ${n.alert.account}` : ''}`);

describe('alert state shared by a cluster', () => {
  it("an account's condition seen by two daemons is one alert, and one recovered notice", async () => {
    await Promise.all([seen('A'), seen('B')]);
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
    await Promise.all([seen('A'), seen('B')]);
    const [a, b] = [daemon('A'), daemon('B')];
    a.engine.set('event_loop_stalled', undefined, true, { maxMs: 900, thresholdMs: 500 });
    b.engine.set('event_loop_stalled', undefined, true, { maxMs: 800, thresholdMs: 500 });
    await Promise.all([a.engine.settled(), b.engine.settled()]);
    expect([...codes(a.got), ...codes(b.got)]).toEqual(['alert event_loop_stalled', 'alert event_loop_stalled']);
    expect(await a.engine.activeInCluster()).toHaveLength(2);
  });

  it('the hourly cap counts every daemon’s notifications to a sink', async () => {
    await Promise.all([seen('A'), seen('B')]);
    const [a, b] = [daemon('A', { capPerHour: 3 }), daemon('B', { capPerHour: 3 })];
    for (let i = 0; i < 2; i++) {
      a.engine.once('lease_lost', `a${i}`, { reason: 'fenced' });
      b.engine.once('lease_lost', `b${i}`, { reason: 'fenced' });
    }
    await Promise.all([a.engine.settled(), b.engine.settled()]);
    expect(a.got.length + b.got.length).toBe(3); // four raised, three sent: the cap is the cluster's
  });

  it('a condition raised by a daemon that is gone is adopted, not raised again; its recovered notice still comes', async () => {
    await Promise.all([seen('A'), seen('B')]);
    const a = daemon('A');
    a.engine.set('conflict', 'acc1', true);
    await a.engine.settled();
    await seen('A', 60_000); // A died
    const b = daemon('B');
    b.engine.set('conflict', 'acc1', true);
    await b.engine.settled();
    expect(codes(b.got)).toEqual([]);
    expect((await b.engine.activeInCluster()).map((x) => x.code)).toEqual(['conflict']);
    b.engine.set('conflict', 'acc1', false);
    await b.engine.settled();
    expect(codes(b.got)).toEqual(['alert.recovered conflict acc1']);
  });

  it('with the store unreachable, a daemon notifies alone rather than lose an alert', async () => {
    const dead = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:1/none', connectionTimeoutMillis: 500 });
    try {
      const a = daemon('A', { pool: dead });
      a.engine.set('conflict', 'acc1', true);
      await a.engine.settled();
      expect(codes(a.got)).toEqual(['alert conflict acc1']);
      expect((await a.engine.activeInCluster()).map((x) => x.code)).toEqual(['conflict']);
    } finally {
      await dead.end();
    }
  });
});
