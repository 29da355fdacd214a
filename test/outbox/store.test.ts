import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ACTIVE_STATES, CLAIM_NEXT_SQL, FINAL_STATES, OutboxStore } from '../../src/outbox/store.js';
import type { AuditEntry, NewRow, OutboxRow, OutboxState } from '../../src/outbox/store.js';
import { STATE_DB_FILE, closeStateDb, openStateDb } from '../../src/store/db.js';
import { MIGRATIONS, migrate } from '../../src/store/migrations.js';
import type { StateDb } from '../../src/store/db.js';
import { makeTmpDir } from '../helpers/tmp.js';

const ALICE = '15550001111@s.whatsapp.net';
const BOB = '15550002222@s.whatsapp.net';
const CAROL = '15550003333@s.whatsapp.net';
const GROUP = '120363025246125888@g.us';

const ALL_STATES: readonly OutboxState[] = ['queued', 'sending', 'unknown', 'sent', 'delivered', 'read', 'held', 'denied', 'failed', 'expired', 'cancelled'];

const NOW = 1_700_000_000_000;
const LEASE = 15_000;

let template: { dir: string; cleanup: () => void };
let tmp: { dir: string; cleanup: () => void };
let db: StateDb;
let store: OutboxStore;
let seq = 0;

// Every test gets its own state directory and database. Running the migrations (one fsync'd
// transaction each) for every test would make this file slow, so they run once into a template
// database that each test copies before opening it with openStateDb (which finds nothing to migrate).
beforeAll(() => {
  template = makeTmpDir('wa-outbox-tpl-');
  closeStateDb(openStateDb(template.dir));
});

afterAll(() => {
  template.cleanup();
});

beforeEach(() => {
  tmp = makeTmpDir('wa-outbox-');
  copyFileSync(join(template.dir, STATE_DB_FILE), join(tmp.dir, STATE_DB_FILE));
  db = openStateDb(tmp.dir);
  store = new OutboxStore(db);
});

afterEach(() => {
  closeStateDb(db);
  tmp.cleanup();
});

function newRow(o: Partial<NewRow> = {}): NewRow {
  seq += 1;
  return {
    account: 'main',
    to: ALICE,
    chatType: 'direct',
    kind: 'message',
    text: `hello ${seq}`,
    messageId: `3EB0TEST${String(seq).padStart(8, '0')}`,
    state: 'queued',
    reason: null,
    idempotencyKey: null,
    requestId: null,
    client: null,
    expiresAt: null,
    ...o,
  };
}

function auditFor(row: Pick<NewRow, 'account' | 'to' | 'kind'>, o: Partial<Omit<AuditEntry, 'outboxId'>> = {}): Omit<AuditEntry, 'outboxId'> {
  return {
    at: NOW,
    account: row.account,
    recipient: row.to,
    kind: row.kind,
    decision: 'allow',
    rule: 'default',
    reason: 'allow by default',
    stage: 'enqueue',
    client: null,
    requestId: null,
    ...o,
  };
}

/** Stores one row with its audit entry through insertMany (a batch of one), throwing its error. */
function insert(row: NewRow, audit: Omit<AuditEntry, 'outboxId'>, now = NOW): { row: OutboxRow; created: boolean } {
  const [r] = store.insertMany([{ row, audit }], now);
  if (!r) throw new Error('insertMany returned nothing');
  if ('error' in r) throw r.error;
  return r;
}

/** Writes an audit entry on its own (the store only writes them with a row change). */
function addAudit(e: AuditEntry): void {
  db.prepare('INSERT INTO audit (at, account, recipient, kind, decision, rule, reason, stage, outbox_id, client, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
    e.at, e.account, e.recipient, e.kind, e.decision, e.rule, e.reason, e.stage, e.outboxId, e.client, e.requestId,
  );
}

/** Inserts a row (with its audit entry) and returns it. */
function add(o: Partial<NewRow> = {}, now = NOW): OutboxRow {
  const row = newRow(o);
  const r = insert(row, auditFor(row), now);
  expect(r.created).toBe(true);
  return r.row;
}

/** Forces a row into a state, whatever it is in now. */
function force(id: number, state: OutboxState, patch: Parameters<OutboxStore['transition']>[3] = {}, now = NOW): OutboxRow {
  const r = store.transition(id, ALL_STATES, state, patch, now);
  expect(r).not.toBeNull();
  return r!;
}

function auditCount(): number {
  return (db.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n;
}

function outboxCount(): number {
  return (db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n;
}

describe('state lists', () => {
  it('final and active states are disjoint and, with held, cover every state', () => {
    expect(FINAL_STATES.filter((s) => ACTIVE_STATES.includes(s))).toEqual([]);
    expect(new Set([...FINAL_STATES, ...ACTIVE_STATES, 'held'])).toEqual(new Set(ALL_STATES));
  });
});

describe('insertMany, one row', () => {
  it('stores the row with its defaults and returns it as stored', () => {
    const row = newRow({ requestId: 'req-1', client: 'cli', expiresAt: NOW + 60_000, idempotencyKey: 'k1' });
    const r = insert(row, auditFor(row), NOW);
    expect(r.created).toBe(true);
    expect(r.row).toEqual({
      id: expect.any(Number),
      account: 'main',
      to: ALICE,
      chatType: 'direct',
      kind: 'message',
      text: row.text,
      messageId: row.messageId,
      state: 'queued',
      reason: null,
      idempotencyKey: 'k1',
      requestId: 'req-1',
      client: 'cli',
      attempts: 0,
      wireSends: 0,
      nextAttemptAt: 0,
      leaseUntil: null,
      createdAt: NOW,
      updatedAt: NOW,
      expiresAt: NOW + 60_000,
      sentAt: null,
      deliveredAt: null,
      readAt: null,
      approvedBy: null,
    } satisfies OutboxRow);
    expect(store.get(r.row.id)).toEqual(r.row);
    expect(store.getByMessageId(row.messageId)).toEqual(r.row);
  });

  it.each([
    { state: 'queued', reason: null },
    { state: 'held', reason: 'hold by rules[0]' },
    { state: 'denied', reason: `${BOB} is not in allowTo of account main` },
  ] as const)('stores a $state row with its reason', ({ state, reason }) => {
    const row = add({ state, reason, to: BOB });
    expect(store.get(row.id)).toMatchObject({ state, reason });
  });

  it.each([
    'plain',
    'quotes " and \\ backslashes',
    'newlines\nand\ttabs',
    'emoji 💬 and accents éàü and CJK 你好',
    '{"text":"looks like JSON"}',
    "it's; DROP TABLE outbox; --",
    'x'.repeat(65_536),
  ])('keeps the text exactly: %#', (text) => {
    const row = add({ text });
    expect(store.get(row.id)!.text).toBe(text);
  });

  it('writes the audit entry with the new row id in the same call', () => {
    const row = newRow({ to: GROUP, chatType: 'group', requestId: 'r9', client: 'http' });
    const audit = auditFor(row, { decision: 'hold', rule: 'hold-groups', reason: 'hold by hold-groups', client: 'http', requestId: 'r9' });
    const { row: stored } = insert({ ...row, state: 'held', reason: 'hold by hold-groups' }, audit, NOW);
    expect(store.audit()).toEqual([{ ...audit, outboxId: stored.id }]);
  });

  it('is one transaction: when the audit entry cannot be written, the row is not stored either', () => {
    const row = newRow();
    const bad = { ...auditFor(row), reason: null as unknown as string }; // audit.reason is NOT NULL
    expect(() => insert(row, bad, NOW)).toThrow(/NOT NULL/);
    expect(outboxCount()).toBe(0);
    expect(store.getByMessageId(row.messageId)).toBeNull();
    expect(auditCount()).toBe(0);
  });

  it('is one transaction: when the row cannot be stored (duplicate message id), no audit entry is written', () => {
    const first = add();
    const dup = newRow({ messageId: first.messageId });
    expect(() => insert(dup, auditFor(dup), NOW)).toThrow(/UNIQUE/);
    expect(outboxCount()).toBe(1);
    expect(auditCount()).toBe(1);
  });

  it('an idempotency key already used on the account returns the existing row, created: false, and writes nothing', () => {
    const first = add({ idempotencyKey: 'order-42', text: 'first' });
    const again = newRow({ idempotencyKey: 'order-42', text: 'second', to: BOB });
    const r = insert(again, auditFor(again), NOW + 5000);
    expect(r).toEqual({ row: first, created: false });
    expect(outboxCount()).toBe(1);
    expect(auditCount()).toBe(1);
    expect(store.getByMessageId(again.messageId)).toBeNull();
  });

  it('returns the existing row in its current state', () => {
    const first = add({ idempotencyKey: 'k' });
    force(first.id, 'sent', { sentAt: NOW + 10 }, NOW + 10);
    const again = newRow({ idempotencyKey: 'k' });
    const r = insert(again, auditFor(again), NOW + 20);
    expect(r.created).toBe(false);
    expect(r.row).toMatchObject({ id: first.id, state: 'sent', sentAt: NOW + 10 });
  });

  it('idempotency keys are per account', () => {
    const a = add({ account: 'a', idempotencyKey: 'same' });
    const b = add({ account: 'b', idempotencyKey: 'same' });
    expect(b.id).not.toBe(a.id);
    expect(outboxCount()).toBe(2);
  });

  it('rows without an idempotency key never collide', () => {
    for (let i = 0; i < 3; i++) add({ idempotencyKey: null, text: 'same text' });
    expect(outboxCount()).toBe(3);
  });
});

describe('insertMany (group commit)', () => {
  const item = (o: Partial<NewRow> = {}) => {
    const row = newRow(o);
    return { row, audit: auditFor(row) };
  };

  it('stores every item with its own outcome and audit entry', () => {
    const items = [item({ to: ALICE }), item({ to: BOB }), item({ to: GROUP, chatType: 'group' })];
    const out = store.insertMany(items, NOW);
    expect(out).toHaveLength(3);
    out.forEach((o, i) => {
      expect('error' in o).toBe(false);
      if ('error' in o) return;
      expect(o.created).toBe(true);
      expect(o.row).toMatchObject({ to: items[i]!.row.to, messageId: items[i]!.row.messageId, createdAt: NOW });
      expect(store.get(o.row.id)).toEqual(o.row);
    });
    expect(store.audit().map((a) => a.outboxId).reverse()).toEqual(out.map((o) => ('error' in o ? null : o.row.id)));
  });

  it('a failing item (duplicate message id) does not take the others down, and leaves no trace', () => {
    const existing = add();
    const items = [item({ to: ALICE }), item({ messageId: existing.messageId }), item({ to: BOB })];
    const out = store.insertMany(items, NOW);
    expect('error' in out[0]!).toBe(false);
    expect(out[1]).toEqual({ error: expect.any(Error) });
    expect(String((out[1] as { error: Error }).error.message)).toMatch(/UNIQUE/);
    expect('error' in out[2]!).toBe(false);
    expect(outboxCount()).toBe(3);
    expect(auditCount()).toBe(3);
  });

  it('an item whose audit entry fails is rolled back alone (its row is not stored)', () => {
    const good = item({ to: ALICE });
    const badRow = newRow({ to: BOB });
    const bad = { row: badRow, audit: { ...auditFor(badRow), rule: null as unknown as string } };
    const out = store.insertMany([good, bad], NOW);
    expect('error' in out[0]!).toBe(false);
    expect('error' in out[1]!).toBe(true);
    expect(store.getByMessageId(good.row.messageId)).not.toBeNull();
    expect(store.getByMessageId(badRow.messageId)).toBeNull();
    expect(outboxCount()).toBe(1);
    expect(auditCount()).toBe(1);
  });

  it('an idempotency key repeated within one batch yields the first row, created: false', () => {
    const out = store.insertMany([item({ idempotencyKey: 'dup', text: 'one' }), item({ idempotencyKey: 'dup', text: 'two' })], NOW);
    const [a, b] = out as Array<{ row: OutboxRow; created: boolean }>;
    expect(a!.created).toBe(true);
    expect(b).toEqual({ row: a!.row, created: false });
    expect(outboxCount()).toBe(1);
  });

  it('an empty batch stores nothing', () => {
    expect(store.insertMany([], NOW)).toEqual([]);
    expect(outboxCount()).toBe(0);
  });
});

describe('get / getByMessageId / list', () => {
  it('unknown ids give null', () => {
    expect(store.get(12345)).toBeNull();
    expect(store.getByMessageId('nope')).toBeNull();
  });

  it('lists newest first, with filters, a limit and a cursor', () => {
    const r1 = add({ account: 'a' });
    const r2 = add({ account: 'b' });
    const r3 = add({ account: 'a', state: 'held', reason: 'hold' });
    const r4 = add({ account: 'a' });
    const ids = (rows: OutboxRow[]) => rows.map((r) => r.id);
    expect(ids(store.list())).toEqual([r4.id, r3.id, r2.id, r1.id]);
    expect(ids(store.list({ account: 'a' }))).toEqual([r4.id, r3.id, r1.id]);
    expect(ids(store.list({ state: 'held' }))).toEqual([r3.id]);
    expect(ids(store.list({ account: 'a', state: 'queued' }))).toEqual([r4.id, r1.id]);
    expect(ids(store.list({ limit: 2 }))).toEqual([r4.id, r3.id]);
    expect(ids(store.list({ beforeId: r3.id }))).toEqual([r2.id, r1.id]);
    expect(store.list({ account: 'nobody' })).toEqual([]);
  });
});

describe('claimNext', () => {
  it('returns null when there is nothing to send', () => {
    expect(store.claimNext('main', NOW, LEASE)).toBeNull();
  });

  it('claims the oldest due row: it becomes sending with a lease', () => {
    const r1 = add({ to: ALICE });
    add({ to: BOB });
    const c = store.claimNext('main', NOW + 100, LEASE);
    expect(c).toMatchObject({ id: r1.id, state: 'sending', leaseUntil: NOW + 100 + LEASE });
    expect(store.get(r1.id)).toMatchObject({ state: 'sending', leaseUntil: NOW + 100 + LEASE, updatedAt: NOW + 100 });
  });

  // Regression (fixed): claimNext returns `{ ...rowAsRead, state: 'sending', leaseUntil }`, so the returned row keeps
  // the updatedAt from before the claim while the stored row has updatedAt = now. Callers that
  // publish or serialise the returned row (rowToJson) show a stale updatedAt. Expected: the returned
  // row equals store.get(id).
  it('the claimed row it returns is the row as stored', () => {
    const r = add({}, NOW);
    const c = store.claimNext('main', NOW + 1000, LEASE);
    expect(c).toEqual(store.get(r.id));
  });

  it('keeps per-peer order: a later row to the same peer waits, rows to other peers go', () => {
    const a1 = add({ to: ALICE });
    const a2 = add({ to: ALICE });
    const b1 = add({ to: BOB });
    const g1 = add({ to: GROUP, chatType: 'group' });
    expect(store.claimNext('main', NOW, LEASE)?.id).toBe(a1.id);
    expect(store.claimNext('main', NOW, LEASE)?.id).toBe(b1.id);
    expect(store.claimNext('main', NOW, LEASE)?.id).toBe(g1.id);
    expect(store.claimNext('main', NOW, LEASE)).toBeNull(); // a2 waits behind a1 (sending)
    store.transition(a1.id, ['sending'], 'sent', { sentAt: NOW + 1, leaseUntil: null }, NOW + 1);
    expect(store.claimNext('main', NOW + 1, LEASE)?.id).toBe(a2.id);
  });

  // Whether a later row to the same peer may be claimed while an earlier row is in each state. The
  // earlier row is made not due (next_attempt_at in the future) so that it is not claimed itself.
  it.each(ALL_STATES.map((state) => ({ state, blocks: ACTIVE_STATES.includes(state) })))(
    'an earlier row in state $state blocks the later one: $blocks',
    ({ state, blocks }) => {
      const first = add({ to: ALICE });
      const later = add({ to: ALICE });
      force(first.id, state, { nextAttemptAt: NOW + 3_600_000 });
      const c = store.claimNext('main', NOW, LEASE);
      if (blocks) expect(c).toBeNull();
      else expect(c?.id).toBe(later.id);
    },
  );

  it('an earlier row that is not yet due blocks its peer but not other peers', () => {
    const a1 = add({ to: ALICE });
    add({ to: ALICE });
    const b1 = add({ to: BOB });
    force(a1.id, 'queued', { nextAttemptAt: NOW + 10_000 });
    expect(store.claimNext('main', NOW, LEASE)?.id).toBe(b1.id);
    expect(store.claimNext('main', NOW, LEASE)).toBeNull();
    expect(store.claimNext('main', NOW + 10_000, LEASE)?.id).toBe(a1.id);
  });

  it.each([
    { at: NOW + 4999, claims: false },
    { at: NOW + 5000, claims: true },
    { at: NOW + 5001, claims: true },
  ])('respects next_attempt_at (due at NOW+5000, asked at $at): $claims', ({ at, claims }) => {
    const r = add();
    force(r.id, 'queued', { nextAttemptAt: NOW + 5000 });
    expect(store.claimNext('main', at, LEASE)?.id ?? null).toBe(claims ? r.id : null);
  });

  it('re-claims an unknown row (a re-send with the same message id), keeping its wire sends', () => {
    const r = add();
    store.claimNext('main', NOW, LEASE);
    store.noteWireSend(r.id, NOW);
    store.releaseSending('main', NOW + 1);
    expect(store.get(r.id)?.state).toBe('unknown');
    const c = store.claimNext('main', NOW + 2, LEASE);
    expect(c).toMatchObject({ id: r.id, state: 'sending', wireSends: 1, messageId: r.messageId });
  });

  it.each(['held', 'denied', 'sent', 'failed', 'expired', 'cancelled'] satisfies OutboxState[])('never claims a %s row', (state) => {
    const r = add();
    force(r.id, state);
    expect(store.claimNext('main', NOW + 3_600_000, LEASE)).toBeNull();
  });

  it('claims only the given account, and other accounts do not block its peers', () => {
    const other = add({ account: 'other', to: ALICE });
    const mine = add({ account: 'main', to: ALICE });
    expect(store.claimNext('main', NOW, LEASE)?.id).toBe(mine.id);
    expect(store.claimNext('main', NOW, LEASE)).toBeNull();
    expect(store.claimNext('other', NOW, LEASE)?.id).toBe(other.id);
    expect(store.claimNext('nobody', NOW, LEASE)).toBeNull();
  });

  it('does not claim the same row twice', () => {
    add();
    expect(store.claimNext('main', NOW, LEASE)).not.toBeNull();
    expect(store.claimNext('main', NOW, LEASE)).toBeNull();
  });
});

describe('claimNext cost', () => {
  it('checks per-peer order on pending rows only, so it does not walk the history of a chat', () => {
    const plan = (db.prepare(`EXPLAIN QUERY PLAN ${CLAIM_NEXT_SQL}`).all('main', NOW) as Array<{ detail: string }>).map((r) => r.detail);
    // The correlated subquery must search the partial index of pending rows, not outbox_by_peer
    // (which holds every row ever sent to the peer).
    const sub = plan.filter((d) => / p /.test(d) || /AS p\b/.test(d) || /outbox AS p|outbox p/.test(d));
    expect(sub.join('\n')).toMatch(/USING (COVERING )?INDEX outbox_pending_by_peer/);
    expect(plan.join('\n')).not.toMatch(/INDEX outbox_by_peer/);
  });

  it('still keeps per-peer order behind a pending row with a long finished history', () => {
    for (let i = 0; i < 200; i++) force(add({ to: ALICE }).id, 'delivered');
    const blocker = add({ to: ALICE });
    force(blocker.id, 'unknown', { nextAttemptAt: NOW + 60_000 });
    const next = add({ to: ALICE });
    const other = add({ to: BOB });
    expect(store.claimNext('main', NOW, LEASE)?.id).toBe(other.id);
    expect(store.claimNext('main', NOW, LEASE)).toBeNull();
    force(blocker.id, 'sent');
    expect(store.claimNext('main', NOW, LEASE)?.id).toBe(next.id);
  });
});

describe('nextDueAt', () => {
  it('is the earliest next_attempt_at among queued and unknown rows of the account', () => {
    expect(store.nextDueAt('main')).toBeNull();
    const a = add({ to: ALICE });
    const b = add({ to: BOB });
    const c = add({ to: CAROL });
    add({ account: 'other' }); // next_attempt_at 0, another account
    force(a.id, 'queued', { nextAttemptAt: NOW + 3000 });
    force(b.id, 'unknown', { nextAttemptAt: NOW + 2000 });
    force(c.id, 'held', { nextAttemptAt: NOW + 1000 });
    expect(store.nextDueAt('main')).toBe(NOW + 2000);
  });
});

describe('transition', () => {
  it.each([
    { from: ['queued'], moves: true },
    { from: ['queued', 'held'], moves: true },
    { from: ['held'], moves: false },
    { from: ['sending', 'unknown'], moves: false },
    { from: [], moves: false },
  ] satisfies Array<{ from: OutboxState[]; moves: boolean }>)('a queued row with from $from: moves $moves', ({ from, moves }) => {
    const r = add();
    const t = store.transition(r.id, from, 'cancelled', { reason: 'cancelled by operator' }, NOW + 7);
    if (moves) {
      expect(t).toMatchObject({ id: r.id, state: 'cancelled', reason: 'cancelled by operator', updatedAt: NOW + 7 });
      expect(store.get(r.id)).toEqual(t);
    } else {
      expect(t).toBeNull();
      expect(store.get(r.id)).toEqual(r); // untouched, updatedAt included
    }
  });

  it('returns null for a row that does not exist', () => {
    expect(store.transition(999, ALL_STATES, 'sent', {}, NOW)).toBeNull();
  });

  it('of two racing moves from the same state only the first wins', () => {
    const r = add();
    store.claimNext('main', NOW, LEASE);
    expect(store.transition(r.id, ['sending'], 'sent', { sentAt: NOW + 1 }, NOW + 1)?.state).toBe('sent');
    expect(store.transition(r.id, ['sending'], 'unknown', { leaseUntil: null }, NOW + 2)).toBeNull();
    expect(store.get(r.id)).toMatchObject({ state: 'sent', sentAt: NOW + 1, updatedAt: NOW + 1 });
  });

  it('applies every patch field, skips undefined ones and sets nulls', () => {
    const r = add({ expiresAt: NOW + 100 });
    const t = store.transition(
      r.id,
      ['queued'],
      'read',
      {
        reason: 'why',
        attempts: 2,
        nextAttemptAt: NOW + 5,
        leaseUntil: NOW + 6,
        sentAt: NOW + 7,
        deliveredAt: NOW + 8,
        readAt: NOW + 9,
        wireSends: 3,
        expiresAt: NOW + 10,
        approvedBy: 'cli req-7',
      },
      NOW + 11,
    );
    expect(t).toMatchObject({
      state: 'read',
      reason: 'why',
      attempts: 2,
      nextAttemptAt: NOW + 5,
      leaseUntil: NOW + 6,
      sentAt: NOW + 7,
      deliveredAt: NOW + 8,
      readAt: NOW + 9,
      wireSends: 3,
      expiresAt: NOW + 10,
      approvedBy: 'cli req-7',
      updatedAt: NOW + 11,
      createdAt: NOW,
      text: r.text,
      messageId: r.messageId,
    });
    const u = store.transition(r.id, ['read'], 'read', { reason: null, leaseUntil: null, expiresAt: undefined }, NOW + 12);
    expect(u).toMatchObject({ reason: null, leaseUntil: null, expiresAt: NOW + 10, attempts: 2, approvedBy: 'cli req-7', updatedAt: NOW + 12 });
  });

  it('a move to the same state (lease renewal) is allowed when listed', () => {
    const r = add();
    store.claimNext('main', NOW, LEASE);
    expect(store.transition(r.id, ['sending'], 'sending', { leaseUntil: NOW + 2 * LEASE }, NOW + 1)).toMatchObject({
      state: 'sending',
      leaseUntil: NOW + 2 * LEASE,
    });
  });

  it('transitionWithAudit writes the audit entry only when the row moved', () => {
    const r = add({ state: 'held', reason: 'hold' });
    const audit = auditFor(newRow(), { decision: 'approve', rule: 'operator', reason: 'approved by operator', stage: 'operator' });
    expect(store.transitionWithAudit(r.id, ['held'], 'queued', { reason: null }, audit, NOW + 1)).toMatchObject({ state: 'queued', reason: null });
    expect(store.audit()[0]).toEqual({ ...audit, outboxId: r.id });
    expect(auditCount()).toBe(2);
    expect(store.transitionWithAudit(r.id, ['held'], 'denied', { reason: 'rejected' }, audit, NOW + 2)).toBeNull();
    expect(auditCount()).toBe(2);
  });
});

describe('noteWireSend', () => {
  it('counts each hand-off to the socket without changing the state', () => {
    const r = add();
    store.claimNext('main', NOW, LEASE);
    store.noteWireSend(r.id, NOW + 1);
    store.noteWireSend(r.id, NOW + 2);
    expect(store.get(r.id)).toMatchObject({ state: 'sending', wireSends: 2, updatedAt: NOW + 2 });
  });
});

describe('releaseSending', () => {
  /** A row claimed at `at` (lease until at + LEASE), handed to the socket `wire` times. */
  function sending(o: Partial<NewRow>, wire: number, at = NOW): OutboxRow {
    const r = add(o);
    force(r.id, 'sending', { leaseUntil: at + LEASE, wireSends: wire }, at);
    return store.get(r.id)!;
  }

  it('rows that reached the wire become unknown, the others queued, and leases are cleared', () => {
    const notSent = sending({ to: ALICE }, 0);
    const sent = sending({ to: BOB }, 1);
    const twice = sending({ to: CAROL }, 2);
    const queued = add({ to: GROUP, chatType: 'group' });
    const moved = store.releaseSending('main', NOW + 100);
    expect(new Map(moved.map((r) => [r.id, r.state]))).toEqual(
      new Map<number, OutboxState>([
        [notSent.id, 'queued'],
        [sent.id, 'unknown'],
        [twice.id, 'unknown'],
      ]),
    );
    for (const r of moved) expect(r).toMatchObject({ leaseUntil: null, updatedAt: NOW + 100 });
    expect(store.get(twice.id)?.wireSends).toBe(2);
    expect(store.get(queued.id)).toEqual(queued);
  });

  it('only touches the given account, or every account with null', () => {
    const mine = sending({ account: 'main' }, 0);
    const theirs = sending({ account: 'other' }, 1);
    expect(store.releaseSending('main', NOW + 1).map((r) => r.id)).toEqual([mine.id]);
    expect(store.get(theirs.id)?.state).toBe('sending');
    const again = sending({ account: 'main', to: BOB }, 0);
    expect(new Set(store.releaseSending(null, NOW + 2).map((r) => r.id))).toEqual(new Set([theirs.id, again.id]));
    expect(store.get(theirs.id)?.state).toBe('unknown');
    expect(store.get(again.id)?.state).toBe('queued');
  });

  it('with onlyExpired, moves only rows whose lease ran out', () => {
    const old = sending({ to: ALICE }, 1, NOW); // lease until NOW + LEASE
    const fresh = sending({ to: BOB }, 1, NOW + 10_000); // lease until NOW + 10_000 + LEASE
    const now = NOW + LEASE + 1;
    expect(store.releaseSending('main', now, true).map((r) => r.id)).toEqual([old.id]);
    expect(store.get(old.id)?.state).toBe('unknown');
    expect(store.get(fresh.id)?.state).toBe('sending');
    expect(store.releaseSending(null, NOW + 10_000 + LEASE + 1, true).map((r) => r.id)).toEqual([fresh.id]);
  });

  it('with onlyExpired, a lease still running is kept', () => {
    const r = sending({}, 0, NOW);
    expect(store.releaseSending('main', NOW + LEASE - 1, true)).toEqual([]);
    expect(store.get(r.id)?.state).toBe('sending');
  });

  it('returns nothing when nothing is sending', () => {
    add();
    expect(store.releaseSending(null, NOW)).toEqual([]);
  });

  it('a released row can be claimed again, in its peer order', () => {
    const a1 = add({ to: ALICE });
    const a2 = add({ to: ALICE });
    store.claimNext('main', NOW, LEASE);
    store.releaseSending('main', NOW + 1);
    expect(store.claimNext('main', NOW + 2, LEASE)?.id).toBe(a1.id);
    expect(store.claimNext('main', NOW + 2, LEASE)).toBeNull();
    store.transition(a1.id, ['sending'], 'sent', {}, NOW + 3);
    expect(store.claimNext('main', NOW + 3, LEASE)?.id).toBe(a2.id);
  });
});

describe('expireDue', () => {
  it.each([
    { state: 'queued', expiresAt: NOW - 1, expires: true },
    { state: 'queued', expiresAt: NOW, expires: true },
    { state: 'queued', expiresAt: NOW + 1, expires: false },
    { state: 'queued', expiresAt: null, expires: false },
    { state: 'held', expiresAt: NOW - 1, expires: true },
    { state: 'held', expiresAt: null, expires: false },
    { state: 'sending', expiresAt: NOW - 1, expires: false },
    { state: 'unknown', expiresAt: NOW - 1, expires: true },
    { state: 'unknown', expiresAt: NOW + 1, expires: false },
    { state: 'sent', expiresAt: NOW - 1, expires: false },
    { state: 'denied', expiresAt: NOW - 1, expires: false },
    { state: 'cancelled', expiresAt: NOW - 1, expires: false },
  ] satisfies Array<{ state: OutboxState; expiresAt: number | null; expires: boolean }>)(
    '$state row expiring at $expiresAt, checked at NOW: expires $expires',
    ({ state, expiresAt, expires }) => {
      const r = add({ expiresAt }, NOW - 10_000);
      if (state !== 'queued') force(r.id, state, {}, NOW - 10_000);
      const out = store.expireDue(NOW);
      if (expires) {
        expect(out).toHaveLength(1);
        expect(out[0]).toMatchObject({ id: r.id, state: 'expired', reason: 'not sent before its TTL', updatedAt: NOW });
        expect(store.get(r.id)?.state).toBe('expired');
      } else {
        expect(out).toEqual([]);
        expect(store.get(r.id)?.state).toBe(state);
      }
    },
  );

  // An unknown row past its TTL used to wait for ever (and go out when the account returned).
  it('an unknown row that reached the wire expires too, with a reason saying it may have been seen', () => {
    const r = add({ expiresAt: NOW - 1 }, NOW - 10_000);
    force(r.id, 'unknown', { wireSends: 2 }, NOW - 10_000);
    const [out] = store.expireDue(NOW);
    expect(out).toMatchObject({ id: r.id, state: 'expired', wireSends: 2 });
    expect(out!.reason).toMatch(/^not confirmed before its TTL: handed to the socket 2 times .* may have reached the peer; not sent again$/);
  });

  it('expires rows of every account at once', () => {
    add({ account: 'a', expiresAt: NOW });
    add({ account: 'b', expiresAt: NOW });
    expect(store.expireDue(NOW).map((r) => r.account).sort()).toEqual(['a', 'b']);
    expect(store.expireDue(NOW)).toEqual([]);
  });
});

describe('deferUnknown', () => {
  it('holds back only the account\'s unknown rows that reached the wire, until the given time', () => {
    const wired = add({ to: ALICE });
    const never = add({ to: BOB });
    const later = add({ to: CAROL });
    const queued = add({ to: GROUP, chatType: 'group' });
    const other = add({ account: 'other', to: ALICE });
    force(wired.id, 'unknown', { wireSends: 1 });
    force(never.id, 'unknown', { wireSends: 0 });
    force(later.id, 'unknown', { wireSends: 1, nextAttemptAt: NOW + 60_000 });
    force(other.id, 'unknown', { wireSends: 1 });
    const out = store.deferUnknown('main', NOW + 5000, NOW + 1);
    expect(new Set(out.map((r) => r.id))).toEqual(new Set([wired.id, later.id]));
    expect(store.get(wired.id)).toMatchObject({ state: 'unknown', nextAttemptAt: NOW + 5000 });
    expect(store.get(later.id)?.nextAttemptAt).toBe(NOW + 60_000); // a later backoff is kept
    expect(store.get(never.id)?.nextAttemptAt).toBe(0);
    expect(store.get(other.id)?.nextAttemptAt).toBe(0);
    expect(store.get(queued.id)?.nextAttemptAt).toBe(0);
    // Inside the window the row is not claimed, and blocks its peer; after it, it is.
    expect(store.claimNext('main', NOW + 4999, LEASE)?.id).toBe(never.id);
    expect(store.claimNext('main', NOW + 4999, LEASE)?.id).toBe(queued.id);
    expect(store.claimNext('main', NOW + 4999, LEASE)).toBeNull();
    expect(store.claimNext('main', NOW + 5000, LEASE)?.id).toBe(wired.id);
  });
});

describe('prune', () => {
  it('deletes only rows in final states last changed before the cutoff', () => {
    const cutoff = NOW;
    const ids = new Map<string, number>();
    for (const state of ALL_STATES) {
      for (const age of ['old', 'new'] as const) {
        const r = add({ to: BOB });
        force(r.id, state, {}, age === 'old' ? cutoff - 1 : cutoff);
        ids.set(`${state}/${age}`, r.id);
      }
    }
    const n = store.prune(cutoff);
    expect(n).toBe(FINAL_STATES.length);
    for (const state of ALL_STATES) {
      expect(store.get(ids.get(`${state}/new`)!), `${state}/new`).not.toBeNull();
      const old = store.get(ids.get(`${state}/old`)!);
      if (FINAL_STATES.includes(state)) expect(old, `${state}/old`).toBeNull();
      else expect(old, `${state}/old`).not.toBeNull();
    }
  });

  it('with a list of states, deletes only those', () => {
    const sent = add({ to: ALICE });
    const failed = add({ to: BOB });
    force(sent.id, 'sent', {}, NOW - 100);
    force(failed.id, 'failed', {}, NOW - 100);
    expect(store.prune(NOW, ['failed'])).toBe(1);
    expect(store.get(failed.id)).toBeNull();
    expect(store.get(sent.id)).not.toBeNull();
  });

  it('keeps the audit trail and returns 0 when nothing is old enough', () => {
    const r = add();
    force(r.id, 'sent', {}, NOW);
    expect(store.prune(NOW - 1)).toBe(0);
    expect(store.prune(NOW + 1)).toBe(1);
    expect(auditCount()).toBe(1);
  });
});

describe('hasWrittenTo', () => {
  it.each(ALL_STATES.map((state) => ({ state, written: ['sent', 'delivered', 'read'].includes(state) })))(
    'a row in state $state counts as written: $written',
    ({ state, written }) => {
      const r = add({ to: BOB });
      force(r.id, state);
      expect(store.hasWrittenTo('main', BOB)).toBe(written);
    },
  );

  it('is per account and per recipient', () => {
    const r = add({ account: 'a', to: ALICE });
    force(r.id, 'delivered');
    expect(store.hasWrittenTo('a', ALICE)).toBe(true);
    expect(store.hasWrittenTo('b', ALICE)).toBe(false);
    expect(store.hasWrittenTo('a', BOB)).toBe(false);
    expect(store.hasWrittenTo('a', '15550001111@lid')).toBe(false);
  });
});

describe('countsByState', () => {
  it('counts rows per state, overall and per account', () => {
    expect(store.countsByState()).toEqual({});
    add({ account: 'a' });
    add({ account: 'a', to: BOB });
    add({ account: 'a', state: 'held', reason: 'h' });
    add({ account: 'b', state: 'denied', reason: 'd' });
    const s = add({ account: 'b', to: CAROL });
    force(s.id, 'sent');
    expect(store.countsByState()).toEqual({ queued: 2, held: 1, denied: 1, sent: 1 });
    expect(store.countsByState('a')).toEqual({ queued: 2, held: 1 });
    expect(store.countsByState('b')).toEqual({ denied: 1, sent: 1 });
    expect(store.countsByState('nobody')).toEqual({});
  });
});

describe('audit', () => {
  it('lists entries newest first (by insertion), filtered by account, with a limit', () => {
    const r1 = add({ account: 'a' });
    const e2 = { ...auditFor(newRow({ account: 'b' }), { at: NOW - 50, decision: 'deny', rule: 'allowTo', reason: 'no' }), stage: 'send', outboxId: null } satisfies AuditEntry;
    addAudit(e2);
    const e3 = { ...auditFor(newRow({ account: 'a' }), { decision: 'reject', rule: 'operator', reason: 'rejected', stage: 'operator', client: 'cli', requestId: 'r3' }), outboxId: r1.id } satisfies AuditEntry;
    addAudit(e3);
    const all = store.audit();
    expect(all).toHaveLength(3);
    expect(all[0]).toEqual(e3);
    expect(all[1]).toEqual(e2);
    expect(all[2]).toMatchObject({ account: 'a', outboxId: r1.id, stage: 'enqueue' });
    expect(store.audit({ account: 'a' }).map((e) => e.rule)).toEqual(['operator', 'default']);
    expect(store.audit({ account: 'b' })).toEqual([e2]);
    expect(store.audit({ limit: 1 })).toEqual([e3]);
    expect(store.audit({ account: 'a', limit: 1 })).toEqual([e3]);
    expect(store.audit({ account: 'nobody' })).toEqual([]);
  });

  it('defaults to the newest 100 entries', () => {
    const items = Array.from({ length: 105 }, (_, i) => {
      const row = newRow({ to: i % 2 ? ALICE : BOB });
      return { row, audit: auditFor(row) };
    });
    store.insertMany(items, NOW); // one transaction instead of 105
    const a = store.audit();
    expect(a).toHaveLength(100);
    expect(a[0]!.outboxId).toBeGreaterThan(a[99]!.outboxId!);
  });
});

describe('persistence', () => {
  it('rows and audit entries survive closing and reopening the database', () => {
    const r = add({ idempotencyKey: 'persist' });
    closeStateDb(db);
    db = openStateDb(tmp.dir);
    store = new OutboxStore(db);
    expect(store.get(r.id)).toEqual(r);
    expect(store.audit()).toHaveLength(1);
    const again = newRow({ idempotencyKey: 'persist' });
    expect(insert(again, auditFor(again), NOW).created).toBe(false);
  });
});

describe('countsByAccount for status', () => {
  it('counts the rows a database had before the counts were kept (migration 18)', () => {
    // The database as it was at migration 17, with rows in it.
    db.exec('DROP TRIGGER outbox_counts_insert; DROP TRIGGER outbox_counts_update; DROP TRIGGER outbox_counts_delete; DROP TABLE outbox_counts; DELETE FROM schema_migrations WHERE version = 18');
    add({ account: 'a' });
    force(add({ account: 'a' }).id, 'sent');
    force(add({ account: 'b' }).id, 'held');
    expect(migrate(db, MIGRATIONS)).toEqual([18]);
    expect(store.countsByAccount()).toEqual(new Map([['a', { queued: 1, sent: 1 }], ['b', { held: 1 }]]));
    force(add({ account: 'b' }).id, 'sent');
    expect(store.countsByState()).toEqual({ queued: 1, sent: 2, held: 1 });
  });

  it('counts the waiting states per account from those rows alone (the state-first index), or every state', () => {
    add({ account: 'a' });
    force(add({ account: 'a' }).id, 'sent');
    force(add({ account: 'a' }).id, 'held');
    force(add({ account: 'b' }).id, 'unknown');
    force(add({ account: 'b' }).id, 'delivered');
    const waiting = store.countsByAccount(['queued', 'sending', 'unknown', 'held']);
    expect(waiting).toEqual(new Map([['a', { queued: 1, held: 1 }], ['b', { unknown: 1 }]]));
    expect(store.countsByAccount().get('b')).toEqual({ unknown: 1, delivered: 1 });
  });

  it('keeps the counts equal to the rows through inserts, state changes, deletes and prunes, without reading the rows', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const ids: number[] = [];
    const byRows = () => {
      const rows = db.prepare('SELECT account, state, count(*) AS n FROM outbox GROUP BY account, state').all() as Array<{ account: string; state: OutboxState; n: number }>;
      const m = new Map<string, Partial<Record<OutboxState, number>>>();
      for (const r of rows) m.set(r.account, { ...m.get(r.account), [r.state]: r.n });
      return m;
    };
    for (let step = 0; step < 400; step++) {
      const op = rand(10);
      if (op < 4 || ids.length === 0) ids.push(add({ account: `a${rand(3)}`, to: `1555000${String(rand(10000)).padStart(4, '0')}@s.whatsapp.net` }).id);
      else if (op < 8) force(ids[rand(ids.length)]!, ALL_STATES[rand(ALL_STATES.length)]!);
      else if (op < 9) db.prepare('DELETE FROM outbox WHERE id = ?').run(ids.splice(rand(ids.length), 1)[0]);
      else {
        store.prune(Date.now() + 1000);
        ids.splice(0, ids.length, ...ids.filter((id) => store.get(id) !== null));
      }
      if (step % 50 === 49) {
        expect(store.countsByAccount()).toEqual(byRows());
        const all: Partial<Record<OutboxState, number>> = {};
        for (const c of byRows().values()) for (const [k, v] of Object.entries(c)) all[k as OutboxState] = (all[k as OutboxState] ?? 0) + v;
        expect(store.countsByState()).toEqual(all);
        expect(store.countsByState('a1')).toEqual(byRows().get('a1') ?? {});
      }
    }
    // Status reads the small table of counts, not the outbox (whose rows are not counted again).
    const plan = db.prepare('EXPLAIN QUERY PLAN SELECT state, sum(n) AS n FROM outbox_counts GROUP BY state HAVING sum(n) > 0').all() as Array<{ detail: string }>;
    expect(plan.map((p) => p.detail).join(' ')).not.toMatch(/\boutbox\b(?!_counts)/);
  });
});
