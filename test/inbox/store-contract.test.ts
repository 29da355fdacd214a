// One suite for the core of both inboxes: the SQLite one a single daemon uses and the PostgreSQL
// one daemons share (a real server). Storing once, the undecryptable-then-readable move, paging
// and counts behave the same on each; on PostgreSQL, writes are fenced by the account's lease, and
// a reader tailing the inbox while several daemons write never skips a row, even one whose
// transaction is slow to commit.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FencedError, type Fence } from '../../src/cluster/lease-store.js';
import { PgInboxStore } from '../../src/inbox/pg-store.js';
import { InboxStore, type InboxCounts, type InboxQuery, type InboxRow, type InboxStatus, type StoreResult } from '../../src/inbox/store.js';
import { closeStateDb, openStateDb } from '../../src/store/db.js';
import type { InboundMessage } from '../../src/wa/types.js';
import { migratedPostgres } from '../helpers/postgres.js';
import { makeTmpDir } from '../helpers/tmp.js';

const PEER = '15550002222@s.whatsapp.net';
const OTHER = '15550003333@s.whatsapp.net';
const NOW = 1_700_000_000_000;

interface Inbox {
  store(account: string, m: InboundMessage, status: Exclude<InboxStatus, 'undecryptable'>): Promise<StoreResult>;
  list(q: InboxQuery): Promise<InboxRow[]>;
  lastCursor(): Promise<number>;
  countsByAccount(): Promise<InboxCounts>;
}

const db = migratedPostgres({ beforeAll, afterAll });
const cleanups: Array<() => void> = [];
afterEach(async () => {
  cleanups.splice(0).reverse().forEach((c) => c());
  await db.pool.query('DROP TRIGGER IF EXISTS slow_commit ON inbox; TRUNCATE inbox, wa_leases; UPDATE inbox_cursor SET n = 0');
});

function msg(id: string, over: Partial<InboundMessage> = {}): InboundMessage {
  return { id, chat: PEER, from: PEER, chatType: 'direct', kind: 'text', text: `text of ${id}`, timestamp: 1_700_000_000, ...over };
}

/** The lease of `account` held by `owner` (taken directly: the lease keeper is tested elsewhere). */
async function fenceFor(account: string, owner = 'me'): Promise<Fence> {
  const r = await db.pool.query<{ epoch: string }>(
    `INSERT INTO wa_leases (account, owner, epoch, expires_at) VALUES ($1, $2, 1, now() + interval '1 hour')
     ON CONFLICT (account) DO UPDATE SET owner = $2, expires_at = now() + interval '1 hour' RETURNING epoch`,
    [account, owner],
  );
  return { owner, lease: { account, epoch: Number(r.rows[0]!.epoch) } };
}

const sqlite = (): Inbox => {
  const t = makeTmpDir('wa-inbox-');
  const sdb = openStateDb(t.dir);
  cleanups.push(t.cleanup, () => closeStateDb(sdb));
  const s = new InboxStore(sdb, { now: () => NOW });
  return {
    store: async (account, m, status) => s.store(account, m, status),
    list: async (q) => s.list(q),
    lastCursor: async () => s.lastCursor(),
    countsByAccount: async () => s.countsByAccount(),
  };
};

const postgres = (): Inbox => {
  const s = new PgInboxStore(db.pool, { now: () => NOW });
  return {
    store: async (account, m, status) => s.store(await fenceFor(account), m, status),
    list: (q) => s.list(q),
    lastCursor: () => s.lastCursor(),
    countsByAccount: () => s.countsByAccount(),
  };
};

describe.each([
  ['SQLite', sqlite],
  ['PostgreSQL', postgres],
])('inbox core on %s', (_name, backend) => {
  it('stores a message once: the same (account, chat, id) again changes nothing; another chat or account is another message', async () => {
    const inbox = backend();
    const first = await inbox.store('main', msg('A'), 'ok');
    expect(first.changed).toBe(true);
    expect(first.row).toMatchObject({ account: 'main', chat: PEER, id: 'A', from: PEER, kind: 'text', text: 'text of A', status: 'ok', offline: false, receivedAt: NOW });
    expect(await inbox.store('main', msg('A', { text: 'a redelivered copy', offline: true }), 'ok')).toEqual({ row: first.row, changed: false });
    expect((await inbox.store('main', msg('A', { chat: OTHER, from: OTHER }), 'ok')).changed).toBe(true);
    expect((await inbox.store('second', msg('A'), 'ok')).changed).toBe(true);
    expect(await inbox.list({ limit: 10, statuses: ['ok'] })).toHaveLength(3);
    expect(await inbox.lastCursor()).toBe((await inbox.list({ limit: 10, statuses: ['ok'] }))[2]!.cursor);
  });

  it('an undecryptable row that later decrypts moves to a new cursor with its content; a readable row is never downgraded', async () => {
    const inbox = backend();
    const bad = await inbox.store('main', msg('A', { kind: 'undecryptable', text: null, detail: { error: 'Bad MAC' } }), 'ok');
    expect(bad.row).toMatchObject({ status: 'undecryptable', kind: 'undecryptable', text: null, detail: { error: 'Bad MAC' } });
    const later = (await inbox.store('main', msg('B'), 'ok')).row.cursor;
    const good = await inbox.store('main', msg('A'), 'ok');
    expect(good.changed).toBe(true);
    expect(good.row).toMatchObject({ status: 'ok', kind: 'text', text: 'text of A', receivedAt: bad.row.receivedAt });
    expect(good.row.cursor).toBeGreaterThan(later);
    expect(await inbox.store('main', msg('A', { kind: 'undecryptable', text: null }), 'ok')).toEqual({ row: good.row, changed: false });
    expect((await inbox.list({ limit: 10, statuses: ['ok', 'undecryptable'] })).map((r) => r.id)).toEqual(['B', 'A']);
    // An ignored sender's undecryptable message stays ignored.
    expect((await inbox.store('main', msg('C', { kind: 'undecryptable', text: null }), 'ignored')).row.status).toBe('ignored');
  });

  it('lists after a cursor, oldest first, by account, chat and status; counts per account and status', async () => {
    const inbox = backend();
    await inbox.store('main', msg('A'), 'ok');
    await inbox.store('main', msg('B', { chat: OTHER, from: OTHER }), 'ok');
    await inbox.store('main', msg('C'), 'ignored');
    await inbox.store('second', msg('D'), 'ok');
    const all = await inbox.list({ limit: 10, statuses: ['ok', 'undecryptable', 'ignored'] });
    expect(all.map((r) => r.id)).toEqual(['A', 'B', 'C', 'D']);
    expect((await inbox.list({ limit: 10, statuses: ['ok'], after: all[0]!.cursor })).map((r) => r.id)).toEqual(['B', 'D']);
    expect((await inbox.list({ limit: 10, statuses: ['ok'], accounts: ['main'] })).map((r) => r.id)).toEqual(['A', 'B']);
    expect((await inbox.list({ limit: 10, statuses: ['ok'], chats: [OTHER] })).map((r) => r.id)).toEqual(['B']);
    expect((await inbox.list({ limit: 10, statuses: ['ignored'] })).map((r) => r.id)).toEqual(['C']);
    expect((await inbox.list({ limit: 1, statuses: ['ok'] })).map((r) => r.id)).toEqual(['A']);
    expect(await inbox.countsByAccount()).toEqual(new Map([['main', { ok: 2, ignored: 1 }], ['second', { ok: 1 }]]));
  });
});

describe('inbox on PostgreSQL, shared', () => {
  it('a daemon whose lease moved stores nothing', async () => {
    const s = new PgInboxStore(db.pool);
    const old = await fenceFor('main');
    await s.store(old, msg('A'), 'ok');
    await db.pool.query("UPDATE wa_leases SET owner = 'other', epoch = epoch + 1 WHERE account = 'main'");
    await expect(s.store(old, msg('B'), 'ok')).rejects.toBeInstanceOf(FencedError);
    expect((await s.list({ limit: 10, statuses: ['ok'] })).map((r) => r.id)).toEqual(['A']);
  });

  it('a reader tailing by cursor while four daemons write never skips a row, even one slow to commit', async () => {
    // Rows with the text "slow" take 150 ms between getting their cursor and committing.
    await db.pool.query(`
      CREATE OR REPLACE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.text = 'slow' THEN PERFORM pg_sleep(0.15); END IF; RETURN NULL; END $$;
      CREATE TRIGGER slow_commit AFTER INSERT ON inbox FOR EACH ROW EXECUTE FUNCTION slow_commit();`);
    const accounts = ['a1', 'a2', 'a3', 'a4'];
    const fences = await Promise.all(accounts.map((a) => fenceFor(a, `daemon-${a}`)));
    const writers = fences.map((fence, w) => {
      const s = new PgInboxStore(db.pool);
      return (async () => {
        for (let i = 0; i < 25; i++) await s.store(fence, msg(`${w}-${i}`, { text: i % 8 === 3 ? 'slow' : `text ${i}` }), 'ok');
      })();
    });
    let done = false;
    const all = Promise.all(writers).then(() => (done = true));
    const reader = new PgInboxStore(db.pool);
    const seen: string[] = [];
    let after = 0;
    for (;;) {
      const finished = done; // read before the page: a pass that starts after the writers finished sees everything
      const page = await reader.list({ after, limit: 50, statuses: ['ok'] });
      for (const r of page) seen.push(`${r.account}:${r.id}`);
      if (page.length) after = page[page.length - 1]!.cursor;
      else if (finished) break;
      else await new Promise((r) => setTimeout(r, 5)); // polling, as a consumer does
    }
    await all;
    const stored = (await reader.list({ after: 0, limit: 1000, statuses: ['ok'] })).map((r) => `${r.account}:${r.id}`);
    expect(stored).toHaveLength(100);
    expect(seen).toEqual(stored);
  });

  it('a readable copy stored while the undecryptable first copy is still committing replaces it, as on SQLite', async () => {
    // The undecryptable copy's transaction sleeps after its insert, holding the cursor counter.
    await db.pool.query(`
      CREATE OR REPLACE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.kind = 'undecryptable' THEN PERFORM pg_sleep(0.5); END IF; RETURN NULL; END $$;
      CREATE TRIGGER slow_commit AFTER INSERT ON inbox FOR EACH ROW EXECUTE FUNCTION slow_commit();`);
    const s = new PgInboxStore(db.pool);
    const fence = await fenceFor('main');
    const first = s.store(fence, msg('X', { kind: 'undecryptable', text: null }), 'ok');
    // Until the first copy is inside its sleep (its row inserted, not committed).
    while ((await db.pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'PgSleep'")).rows[0].n === 0);
    const second = s.store(fence, msg('X'), 'ok');
    const [a, b] = await Promise.all([first, second]);
    expect([a.row.kind, b.changed, b.row.kind, b.row.text]).toEqual(['undecryptable', true, 'text', 'text of X']);
    expect(b.row.receivedAt).toBe(a.row.receivedAt);
    expect((await s.list({ limit: 10, statuses: ['ok', 'undecryptable'] })).map((r) => [r.id, r.kind])).toEqual([['X', 'text']]);
  });
});
