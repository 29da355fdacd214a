// One suite for the core of both outboxes: the SQLite one a single daemon uses and the PostgreSQL
// one daemons share (a real server). Idempotent inserts, per-peer order of claims, guarded moves,
// releasing in-flight rows and the kept counts behave the same on each; on PostgreSQL, claims are
// also fenced by the account's lease and never hand one row to two racing drains.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FencedError, type Fence } from '../../src/cluster/lease-store.js';
import { OutboxChanges, type OutboxChange } from '../../src/outbox/changes.js';
import { PgOutboxChanges } from '../../src/outbox/pg-changes.js';
import { PgOutboxStore } from '../../src/outbox/pg-store.js';
import { OutboxStore, type AuditEntry, type NewRow, type OutboxRow, type OutboxState, type TransitionPatch } from '../../src/outbox/store.js';
import { closeStateDb, openStateDb } from '../../src/store/db.js';
import { migratedPostgres } from '../helpers/postgres.js';
import { makeTmpDir } from '../helpers/tmp.js';

const NOW = 1_800_000_000_000;
const ALICE = '15550002222@s.whatsapp.net';
const BOB = '15550003333@s.whatsapp.net';

interface Outbox {
  insert(row: NewRow, now?: number): Promise<{ row: OutboxRow; created: boolean } | { error: Error }>;
  claim(account: string, now: number): Promise<OutboxRow | null>;
  transition(id: number, from: OutboxState[], to: OutboxState, patch?: TransitionPatch, now?: number): Promise<OutboxRow | null>;
  release(account: string, now: number, onlyExpired?: boolean): Promise<OutboxRow[]>;
  countsByAccount(): Promise<Map<string, Partial<Record<OutboxState, number>>>>;
  countsByState(): Promise<Partial<Record<OutboxState, number>>>;
  /** Folds kept-count deltas (PostgreSQL; nothing to do on SQLite). */
  fold(): Promise<void>;
  /** Counts from the rows themselves (what the kept counts must equal). */
  rowCounts(): Promise<Map<string, Partial<Record<OutboxState, number>>>>;
  list(filter: Parameters<OutboxStore['list']>[0]): Promise<OutboxRow[]>;
  audit(filter: Parameters<OutboxStore['audit']>[0]): Promise<AuditEntry[]>;
  /** The journal of state changes (GET /v1/messages/changes). */
  changes(q: { after?: number; accounts?: readonly string[]; limit: number }): Promise<OutboxChange[]>;
  pruneChanges(cutoff: number): Promise<number>;
}

const db = migratedPostgres({ beforeAll, afterAll }, 10);
const cleanups: Array<() => void> = [];
afterEach(async () => {
  cleanups.splice(0).reverse().forEach((c) => c());
  await db.pool.query('TRUNCATE outbox, audit, outbox_counts, outbox_count_deltas, wa_leases, outbox_changes; UPDATE outbox_changes_cursor SET n = 0');
});

let seq = 0;
function newRow(o: Partial<NewRow> = {}): NewRow {
  seq += 1;
  return { account: 'main', to: ALICE, chatType: 'direct', kind: 'message', text: `hello ${seq}`, messageId: `3EB0C${String(seq).padStart(10, '0')}`, state: 'queued', reason: null, idempotencyKey: null, requestId: null, client: null, expiresAt: null, ...o };
}
const auditFor = (r: NewRow): Omit<AuditEntry, 'outboxId'> => ({ at: NOW, account: r.account, recipient: r.to, kind: r.kind, decision: 'allow', rule: 'default', reason: 'allowed', stage: 'enqueue', client: r.client, requestId: r.requestId });

function byRows(rows: Array<{ account: string; state: OutboxState; n: number | string }>): Map<string, Partial<Record<OutboxState, number>>> {
  const out = new Map<string, Partial<Record<OutboxState, number>>>();
  for (const r of rows) out.set(r.account, { ...out.get(r.account), [r.state]: Number(r.n) });
  return out;
}

const sqlite = (): Outbox => {
  const t = makeTmpDir();
  const db = openStateDb(t.dir);
  cleanups.push(t.cleanup, () => closeStateDb(db));
  const s = new OutboxStore(db);
  return {
    insert: async (row, now = NOW) => s.insertMany([{ row, audit: auditFor(row) }], now)[0]!,
    claim: async (account, now) => s.claimNext(account, now, 30_000),
    transition: async (id, from, to, patch = {}, now = NOW) => s.transition(id, from, to, patch, now),
    release: async (account, now, onlyExpired) => s.releaseSending(account, now, onlyExpired),
    countsByAccount: async () => s.countsByAccount(),
    countsByState: async () => s.countsByState(),
    fold: async () => undefined,
    rowCounts: async () => byRows(db.prepare('SELECT account, state, count(*) AS n FROM outbox GROUP BY account, state').all() as Array<{ account: string; state: OutboxState; n: number }>),
    list: async (f) => s.list(f),
    audit: async (f) => s.audit(f),
    changes: async (q) => new OutboxChanges(db).list(q),
    pruneChanges: async (cutoff) => new OutboxChanges(db).prune(cutoff),
  };
};

/** The lease of `account` held by 'me' (taken directly: the lease keeper is tested elsewhere). */
async function fenceFor(account: string): Promise<Fence> {
  const r = await db.pool.query<{ epoch: string }>(
    `INSERT INTO wa_leases (account, owner, epoch, expires_at) VALUES ($1, 'me', 1, now() + interval '1 hour')
     ON CONFLICT (account) DO UPDATE SET owner = 'me', expires_at = now() + interval '1 hour' RETURNING epoch`,
    [account],
  );
  return { owner: 'me', lease: { account, epoch: Number(r.rows[0]!.epoch) } };
}

const postgres = (): Outbox => {
  const s = new PgOutboxStore(db.pool);
  return {
    insert: async (row, now = NOW) => (await s.insertMany([{ row, audit: auditFor(row) }], now))[0]!,
    claim: async (account, now) => s.claimNext(await fenceFor(account), now, 30_000),
    transition: (id, from, to, patch = {}, now = NOW) => s.transition(id, from, to, patch, now),
    release: async (account, now, onlyExpired) => s.releaseSending(await fenceFor(account), now, onlyExpired),
    countsByAccount: () => s.countsByAccount(),
    countsByState: () => s.countsByState(),
    fold: async () => void (await s.foldCounts()),
    rowCounts: async () => byRows((await db.pool.query('SELECT account, state, count(*) AS n FROM outbox GROUP BY account, state')).rows),
    list: (f) => s.list(f),
    audit: (f) => s.audit(f),
    changes: (q) => new PgOutboxChanges(db.pool).list(q),
    pruneChanges: (cutoff) => new PgOutboxChanges(db.pool).prune(cutoff),
  };
};

const rowOf = (r: { row: OutboxRow } | { error: Error }): OutboxRow => {
  if ('error' in r) throw r.error;
  return r.row;
};

describe.each([
  ['SQLite', sqlite],
  ['PostgreSQL', postgres],
])('outbox core on %s', (_name, backend) => {
  it('an idempotency key answers the same row to the same caller, a 409 to another client; operators share keys', async () => {
    const o = backend();
    const first = rowOf(await o.insert(newRow({ idempotencyKey: 'k1', client: 'bot', clientRole: 'client' })));
    const again = await o.insert(newRow({ idempotencyKey: 'k1', client: 'bot', clientRole: 'client' }));
    expect(again).toEqual({ row: first, created: false });
    const other = await o.insert(newRow({ idempotencyKey: 'k1', client: 'other', clientRole: 'client' }));
    expect('error' in other && other.error.message).toBe('idempotencyKey: already used on account main by another caller; choose another key');
    const op = rowOf(await o.insert(newRow({ idempotencyKey: 'k2', client: 'alice', clientRole: 'operator' })));
    expect(await o.insert(newRow({ idempotencyKey: 'k2', client: 'bob', clientRole: 'operator' }))).toEqual({ row: op, created: false });
    // The same key on another account is another message.
    expect(await o.insert(newRow({ account: 'second', idempotencyKey: 'k1', client: 'bot', clientRole: 'client' }))).toMatchObject({ created: true });
  });

  it('lists rows and audit entries newest first, filtered by account(s), state, client, role, before an id, up to a limit (the same on both stores)', async () => {
    const o = backend();
    const a1 = rowOf(await o.insert(newRow({ account: 'a', client: 'bot', clientRole: 'client' })));
    const a2 = rowOf(await o.insert(newRow({ account: 'a', state: 'held' })));
    const b1 = rowOf(await o.insert(newRow({ account: 'b', client: 'bot', clientRole: 'client' })));
    const ids = (rows: OutboxRow[]) => rows.map((r) => r.id);
    expect(ids(await o.list({}))).toEqual([b1.id, a2.id, a1.id]);
    expect(ids(await o.list({ account: 'a' }))).toEqual([a2.id, a1.id]);
    expect(ids(await o.list({ accounts: ['b'] }))).toEqual([b1.id]);
    expect(ids(await o.list({ accounts: [] }))).toEqual([]);
    expect(ids(await o.list({ state: 'held' }))).toEqual([a2.id]);
    expect(ids(await o.list({ beforeId: b1.id, limit: 1 }))).toEqual([a2.id]);
    expect((await o.audit({})).map((e) => e.outboxId)).toEqual([b1.id, a2.id, a1.id]);
    expect((await o.audit({ accounts: ['a'], client: 'bot' })).map((e) => e.outboxId)).toEqual([a1.id]);
    expect(await o.audit({ role: 'client' })).toEqual([]); // these entries carry no role
    expect((await o.audit({ account: 'b', limit: 5 }))[0]).toMatchObject({ at: NOW, account: 'b', decision: 'allow', stage: 'enqueue', outboxId: b1.id, client: 'bot' });
  });

  it('claims in per-peer order: a later row to a peer waits while an earlier one is pending; other peers go on', async () => {
    const o = backend();
    const a1 = rowOf(await o.insert(newRow({ to: ALICE })));
    const a2 = rowOf(await o.insert(newRow({ to: ALICE })));
    const b1 = rowOf(await o.insert(newRow({ to: BOB })));
    const other = rowOf(await o.insert(newRow({ account: 'second' })));
    expect(await o.claim('main', NOW)).toMatchObject({ id: a1.id, state: 'sending', leaseUntil: NOW + 30_000 });
    expect((await o.claim('main', NOW))?.id).toBe(b1.id);
    expect(await o.claim('main', NOW)).toBeNull(); // a2 waits behind a1
    expect(await o.transition(a1.id, ['sending'], 'sent', { sentAt: NOW })).toMatchObject({ state: 'sent', sentAt: NOW });
    expect((await o.claim('main', NOW))?.id).toBe(a2.id);
    expect((await o.claim('second', NOW))?.id).toBe(other.id);
    expect(await o.claim('main', NOW)).toBeNull();
  });

  it('a row not yet due is not claimed until its time; a guarded move from the wrong state changes nothing', async () => {
    const o = backend();
    const r = rowOf(await o.insert(newRow()));
    expect(await o.transition(r.id, ['queued'], 'queued', { nextAttemptAt: NOW + 5000, attempts: 1, reason: 'socket closed' })).toMatchObject({ nextAttemptAt: NOW + 5000, attempts: 1 });
    expect(await o.claim('main', NOW + 4999)).toBeNull();
    expect(await o.transition(r.id, ['sending'], 'sent')).toBeNull();
    expect((await o.claim('main', NOW + 5000))?.id).toBe(r.id);
    expect(await o.transition(r.id, ['queued', 'unknown'], 'failed')).toBeNull();
  });

  it('puts in-flight rows back: unknown when they reached the wire, queued when not; only expired leases when asked', async () => {
    const o = backend();
    const wired = rowOf(await o.insert(newRow({ to: ALICE })));
    const notWired = rowOf(await o.insert(newRow({ to: BOB })));
    await o.claim('main', NOW);
    await o.claim('main', NOW + 10_000);
    await o.transition(wired.id, ['sending'], 'sending', { wireSends: 1 }, NOW);
    // At NOW + 35 s only the first lease (until NOW + 30 s) has run out.
    expect((await o.release('main', NOW + 35_000, true)).map((r) => [r.id, r.state])).toEqual([[wired.id, 'unknown']]);
    expect((await o.release('main', NOW + 36_000)).map((r) => [r.id, r.state, r.leaseUntil])).toEqual([[notWired.id, 'queued', null]]);
  });

  it('keeps counts equal to a count of the rows through inserts, claims, moves and releases', async () => {
    const o = backend();
    let rnd = 7;
    const random = () => ((rnd = (rnd * 48271) % 2147483647) / 2147483647);
    const ids: number[] = [];
    for (let i = 0; i < 120; i++) {
      const op = random();
      const account = random() < 0.5 ? 'main' : 'second';
      if (op < 0.4 || ids.length === 0) ids.push(rowOf(await o.insert(newRow({ account, to: random() < 0.5 ? ALICE : BOB, state: random() < 0.2 ? 'held' : 'queued' }))).id);
      else if (op < 0.6) await o.claim(account, NOW);
      else if (op < 0.85) await o.transition(ids[Math.floor(random() * ids.length)]!, ['sending', 'held', 'queued'], random() < 0.5 ? 'sent' : 'cancelled');
      else await o.release(account, NOW);
      if (random() < 0.1) await o.fold();
      if (i === 60) expect(await o.countsByAccount()).toEqual(await o.rowCounts());
    }
    await o.fold();
    const rows = await o.rowCounts();
    expect(await o.countsByAccount()).toEqual(rows);
    const total: Partial<Record<OutboxState, number>> = {};
    for (const c of rows.values()) for (const [s, n] of Object.entries(c) as Array<[OutboxState, number]>) total[s] = (total[s] ?? 0) + n;
    expect(await o.countsByState()).toEqual(total);
  });
});

describe.each([
  ['SQLite', sqlite],
  ['PostgreSQL', postgres],
])('outbox changes journal on %s', (_name, backend) => {
  it('journals what a sender cares about, by cursor: queued, sent, delivered, read; not the sending/unknown churn nor a put-back', async () => {
    const o = backend();
    const a = rowOf(await o.insert(newRow()));
    const b = rowOf(await o.insert(newRow({ account: 'second', to: BOB })));
    const claimed = await o.claim('main', NOW);
    expect(claimed?.id).toBe(a.id);
    await o.release('main', NOW + 1); // sending -> queued: not journalled
    await o.claim('main', NOW + 2);
    await o.transition(a.id, ['sending'], 'sent', {}, NOW + 3);
    await o.transition(a.id, ['sent'], 'delivered', {}, NOW + 4);
    await o.transition(b.id, ['queued'], 'cancelled', { reason: 'cancelled by the operator' }, NOW + 5);
    const all = await o.changes({ limit: 100 });
    expect(all.map((c) => [c.id, c.state])).toEqual([
      [a.id, 'queued'],
      [b.id, 'queued'],
      [a.id, 'sent'],
      [a.id, 'delivered'],
      [b.id, 'cancelled'],
    ]);
    expect(all.map((c) => c.cursor)).toEqual([...all.map((c) => c.cursor)].sort((x, y) => x - y));
    expect(all[4]).toMatchObject({ account: 'second', messageId: b.messageId, to: BOB, reason: 'cancelled by the operator', at: NOW + 5 });
    expect((await o.changes({ limit: 100, after: all[1]!.cursor, accounts: ['main'] })).map((c) => c.state)).toEqual(['sent', 'delivered']);
    expect((await o.changes({ limit: 1, after: all[1]!.cursor })).map((c) => c.state)).toEqual(['sent']);
    expect(await o.pruneChanges(NOW + 3)).toBe(2); // the two enqueues (stamped NOW)
    expect((await o.changes({ limit: 100 })).map((c) => c.state)).toEqual(['sent', 'delivered', 'cancelled']);
  });
});

describe('outbox on PostgreSQL, shared', () => {
  it("one transaction's changes take consecutive cursors in the order they were made", async () => {
    const s = new PgOutboxStore(db.pool);
    const rows = [newRow(), newRow({ to: BOB }), newRow({ account: 'second' })];
    const made = (await s.insertMany(rows.map((row) => ({ row, audit: auditFor(row) })), NOW)).map(rowOf);
    const journal = await new PgOutboxChanges(db.pool).list({ limit: 10 });
    expect(journal.map((c) => c.id)).toEqual(made.map((r) => r.id));
    expect(journal.map((c) => c.cursor - journal[0]!.cursor)).toEqual([0, 1, 2]);
  });

  it('a change committed after a later one still reaches a reader that read past the later one', async () => {
    const o = postgres();
    const a = rowOf(await o.insert(newRow()));
    // A transaction changes row a and stays open; meanwhile another change commits.
    const slow = await db.pool.connect();
    try {
      await slow.query('BEGIN');
      await slow.query("UPDATE outbox SET state = 'cancelled', updated_at = $2 WHERE id = $1", [a.id, NOW + 1]);
      rowOf(await o.insert(newRow({ to: BOB })));
      const seen = await o.changes({ limit: 100 });
      expect(seen.map((c) => c.state)).toEqual(['queued', 'queued']); // the open change is not read
      await slow.query('COMMIT');
      // Numbered at its commit: after what the reader has already read, so not skipped.
      expect((await o.changes({ limit: 100, after: seen[1]!.cursor })).map((c) => [c.id, c.state])).toEqual([[a.id, 'cancelled']]);
    } finally {
      slow.release();
    }
  });

  it('eight drains racing on one account claim each row once, in per-peer order', async () => {
    const s = new PgOutboxStore(db.pool);
    const peers = [ALICE, BOB, '15550004444@s.whatsapp.net', '15550005555@s.whatsapp.net'];
    const inserted = await s.insertMany(Array.from({ length: 40 }, (_, i) => newRow({ to: peers[i % 4]! })).map((row) => ({ row, audit: auditFor(row) })));
    const fence = await fenceFor('main');
    const claimed: OutboxRow[] = [];
    // Each drain claims, then finishes its row; a row to a peer is claimable only after the one before it is sent.
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let idle = 0; idle < 50; ) {
          const row = await s.claimNext(fence, NOW, 30_000);
          if (!row) {
            idle++;
            await new Promise((r) => setImmediate(r));
            continue;
          }
          idle = 0;
          claimed.push(row);
          const pendingBefore = await db.pool.query("SELECT count(*)::int AS n FROM outbox WHERE recipient = $1 AND id < $2 AND state IN ('queued', 'sending', 'unknown')", [row.to, row.id]);
          expect(pendingBefore.rows[0].n).toBe(0);
          expect(await s.transition(row.id, ['sending'], 'sent', { sentAt: NOW }, NOW, fence)).toMatchObject({ state: 'sent' });
        }
      }),
    );
    const ids = inserted.map((r) => ('row' in r ? r.row.id : -1));
    expect(claimed.map((r) => r.id).sort((a, b) => a - b)).toEqual(ids);
    for (const peer of peers) {
      const order = claimed.filter((r) => r.to === peer).map((r) => r.id);
      expect(order).toEqual([...order].sort((a, b) => a - b));
    }
  });

  it('a drain whose lease moved claims nothing and moves nothing; the row stays for the new owner', async () => {
    const s = new PgOutboxStore(db.pool);
    const [first] = await s.insertMany([newRow(), newRow()].map((row) => ({ row, audit: auditFor(row) })));
    const old = await fenceFor('main');
    const claimed = await s.claimNext(old, NOW, 30_000);
    expect(claimed?.id).toBe('row' in first! ? first.row.id : -1);
    await db.pool.query("UPDATE wa_leases SET owner = 'other', epoch = epoch + 1 WHERE account = 'main'");
    await expect(s.claimNext(old, NOW, 30_000)).rejects.toBeInstanceOf(FencedError);
    await expect(s.transition(claimed!.id, ['sending'], 'sent', {}, NOW, old)).rejects.toBeInstanceOf(FencedError);
    // Nor may it put the new owner's in-flight row back (it would be claimed and sent again).
    await expect(s.releaseSending(old, NOW + 60_000)).rejects.toBeInstanceOf(FencedError);
    expect((await s.get(claimed!.id))?.state).toBe('sending');
    expect((await db.pool.query("SELECT count(*)::int AS n FROM outbox WHERE state = 'queued'")).rows[0].n).toBe(1);
  });

  it('two daemons inserting one idempotency key at once store one row and both answer it', async () => {
    const a = new PgOutboxStore(db.pool);
    const b = new PgOutboxStore(db.pool);
    const row = newRow({ idempotencyKey: 'same', client: 'bot', clientRole: 'client' });
    const results = await Promise.all([a, b, a, b].map((s, i) => s.insertMany([{ row: { ...row, messageId: `${row.messageId}${i}` }, audit: auditFor(row) }])));
    const rows = results.map((r) => rowOf(r[0]!));
    expect(new Set(rows.map((r) => r.id)).size).toBe(1);
    expect(results.map((r) => ('created' in r[0]! ? r[0].created : null)).filter(Boolean)).toHaveLength(1);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM outbox')).rows[0].n).toBe(1);
  });

  it('batches touching two accounts in opposite orders, claims racing releases and folds of the counts never fail on each other; the counts stay exact', async () => {
    const s = new PgOutboxStore(db.pool);
    const fences = { A: await fenceFor('A'), B: await fenceFor('B') };
    const errors: string[] = [];
    for (let round = 0; round < 15; round++) {
      const ab = ['A', 'B', 'A', 'B'].map((account) => newRow({ account }));
      const ba = ['B', 'A', 'B', 'A'].map((account) => newRow({ account }));
      const batches = await Promise.all([ab, ba].map((rows) => s.insertMany(rows.map((row) => ({ row, audit: auditFor(row) })))));
      for (const r of batches.flat()) if ('error' in r) errors.push(r.error.message);
      // Outcomes come back in the callers' order, whatever order the rows were written in.
      expect(batches[0]!.map((r) => ('row' in r ? r.row.account : '?'))).toEqual(['A', 'B', 'A', 'B']);
      await Promise.all([
        s.claimNext(fences.A, NOW, 30_000),
        s.releaseSending(fences.A, NOW + 60_000),
        s.claimNext(fences.B, NOW, 30_000),
        s.releaseSending(fences.B, NOW + 60_000),
        s.foldCounts(),
        s.foldCounts(),
      ]).catch((err: Error) => errors.push(err.message));
    }
    expect(errors).toEqual([]);
    const rows = byRows((await db.pool.query('SELECT account, state, count(*) AS n FROM outbox GROUP BY account, state')).rows);
    expect(await s.countsByAccount()).toEqual(rows);
  });
});
