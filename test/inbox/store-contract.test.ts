// One suite for the core of both inboxes: the SQLite one a single daemon uses and the PostgreSQL
// one daemons share (a real server). Storing once, the undecryptable-then-readable move, paging
// and counts behave the same on each; on PostgreSQL, writes are fenced by the account's lease, and
// a reader tailing the inbox while several daemons write never skips a row, even one whose
// transaction is slow to commit, and every new cursor is announced on the inbox channel.
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FencedError, type Fence } from '../../src/cluster/lease-store.js';
import { ConsumerStore, type ConsumerIdentity, type ConsumerRow, type ConsumerSpec } from '../../src/inbox/consumers.js';
import { PgConsumerStore } from '../../src/inbox/pg-consumers.js';
import { INBOX_CHANNEL, NotOwnerError, PgInboxStore } from '../../src/inbox/pg-store.js';
import { InboxStore, type InboxCounts, type InboxQuery, type InboxRow, type InboxStatus, type StoreResult } from '../../src/inbox/store.js';
import { closeStateDb, openStateDb } from '../../src/store/db.js';
import type { InboundMediaRef, InboundMessage } from '../../src/wa/types.js';
import { migratedPostgres } from '../helpers/postgres.js';
import { makeTmpDir } from '../helpers/tmp.js';

const PEER = '15550002222@s.whatsapp.net';
const OTHER = '15550003333@s.whatsapp.net';
const NOW = 1_700_000_000_000;

interface Inbox {
  store(account: string, m: InboundMessage, status: Exclude<InboxStatus, 'undecryptable'>): Promise<StoreResult>;
  list(q: InboxQuery): Promise<InboxRow[]>;
  unread(account: string, chats: string | readonly string[], upTo?: number): Promise<InboxRow[]>;
  markRead(cursors: readonly number[]): Promise<void>;
  byCursor(cursor: number): Promise<InboxRow | null>;
  byMessageId(id: string, q: { accounts?: readonly string[]; chats?: readonly string[]; statuses: readonly InboxStatus[] }): Promise<InboxRow[]>;
  mediaRef(cursor: number): Promise<InboundMediaRef | null>;
  updateMediaRef(cursor: number, ref: InboundMediaRef): Promise<void>;
  pruneAcknowledged(cutoff: number): Promise<number>;
  pruneAll(cutoff: number): Promise<number>;
  lastCursor(): Promise<number>;
  countsByAccount(): Promise<InboxCounts>;
  /** The consumers kept beside this inbox (retention asks them what was acknowledged). */
  consumers: {
    add(spec: ConsumerSpec): Promise<boolean>;
    get(name: string): Promise<ConsumerRow | null>;
    ack(name: string, cursor: number, as?: ConsumerIdentity): Promise<number | null>;
  };
}

const db = migratedPostgres({ beforeAll, afterAll });
const cleanups: Array<() => void> = [];
afterEach(async () => {
  cleanups.splice(0).reverse().forEach((c) => c());
  await db.pool.query('DROP TRIGGER IF EXISTS slow_commit ON inbox; TRUNCATE inbox, wa_leases, inbox_consumers, inbox_dead_letters; UPDATE inbox_cursor SET n = 0');
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

/** What downloading an image needs, as a message carries it. */
const MEDIA: InboundMediaRef = {
  mediaType: 'image',
  mediaKey: 'a2V5IG9mIHRoZSBpbWFnZQ==',
  directPath: '/v/t62.7118-24/first',
  url: 'https://mmg.whatsapp.net/v/t62.7118-24/first',
  fileEncSha256: 'ZW5jcnlwdGVk',
  fileSha256: 'cGxhaW4=',
  fileLength: 12_345,
  mimetype: 'image/jpeg',
};

// `now` is when a row is received: a test that moves it stores rows of different ages (retention).
const sqlite = (now: () => number = () => NOW): Inbox => {
  const t = makeTmpDir('wa-inbox-');
  const sdb = openStateDb(t.dir);
  cleanups.push(t.cleanup, () => closeStateDb(sdb));
  const s = new InboxStore(sdb, { now });
  const c = new ConsumerStore(sdb);
  return {
    store: async (account, m, status) => s.store(account, m, status),
    list: async (q) => s.list(q),
    unread: async (account, chats, upTo) => s.unread(account, chats, upTo),
    markRead: async (cursors) => s.markRead(cursors),
    byCursor: async (cursor) => s.byCursor(cursor),
    byMessageId: async (id, q) => s.byMessageId(id, q),
    mediaRef: async (cursor) => s.mediaRef(cursor),
    updateMediaRef: async (cursor, ref) => s.updateMediaRef(cursor, ref),
    pruneAcknowledged: async (cutoff) => s.pruneAcknowledged(cutoff),
    pruneAll: async (cutoff) => s.pruneAll(cutoff),
    lastCursor: async () => s.lastCursor(),
    countsByAccount: async () => s.countsByAccount(),
    consumers: { add: async (spec) => c.add(spec), get: async (name) => c.get(name), ack: async (name, cursor, as) => c.ack(name, cursor, as) },
  };
};

const postgres = (now: () => number = () => NOW): Inbox => {
  const s = new PgInboxStore(db.pool, { now });
  const c = new PgConsumerStore(db.pool);
  return {
    store: async (account, m, status) => s.storeFenced(await fenceFor(account), m, status),
    list: (q) => s.list(q),
    unread: (account, chats, upTo) => s.unread(account, chats, upTo),
    markRead: (cursors) => s.markRead(cursors),
    byCursor: (cursor) => s.byCursor(cursor),
    byMessageId: (id, q) => s.byMessageId(id, q),
    mediaRef: (cursor) => s.mediaRef(cursor),
    updateMediaRef: (cursor, ref) => s.updateMediaRef(cursor, ref),
    pruneAcknowledged: (cutoff) => s.pruneAcknowledged(cutoff),
    pruneAll: (cutoff) => s.pruneAll(cutoff),
    lastCursor: () => s.lastCursor(),
    countsByAccount: () => s.countsByAccount(),
    consumers: { add: (spec) => c.add(spec), get: (name) => c.get(name), ack: (name, cursor, as) => c.ack(name, cursor, as) },
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

  it('unread: the readable rows of the account\'s chats not yet marked read, up to a cursor, oldest first', async () => {
    const inbox = backend();
    const a = (await inbox.store('main', msg('A'), 'ok')).row;
    const b = (await inbox.store('main', msg('B', { chat: OTHER, from: OTHER }), 'ok')).row;
    await inbox.store('main', msg('C'), 'ignored'); // never delivered, so never read
    await inbox.store('main', msg('D', { kind: 'undecryptable', text: null }), 'ok'); // nothing to read yet
    await inbox.store('second', msg('E'), 'ok'); // the same chat on another account
    const f = (await inbox.store('main', msg('F'), 'ok')).row;
    const g = (await inbox.store('main', msg('G'), 'ok')).row;
    const ids = (rows: InboxRow[]) => rows.map((r) => r.id);
    expect(ids(await inbox.unread('main', PEER))).toEqual(['A', 'F', 'G']);
    expect(await inbox.unread('main', [PEER, OTHER])).toEqual([a, b, f, g]);
    expect(ids(await inbox.unread('main', [OTHER]))).toEqual(['B']);
    expect(ids(await inbox.unread('second', PEER))).toEqual(['E']);
    // A read receipt for a message also covers the earlier ones, never the later ones.
    expect(ids(await inbox.unread('main', PEER, f.cursor))).toEqual(['A', 'F']);
    expect(ids(await inbox.unread('main', PEER, a.cursor - 1))).toEqual([]);

    await inbox.markRead([]);
    await inbox.markRead([a.cursor, g.cursor]);
    expect(ids(await inbox.unread('main', [PEER, OTHER]))).toEqual(['B', 'F']);
    await inbox.markRead([b.cursor, f.cursor]);
    expect(await inbox.unread('main', [PEER, OTHER])).toEqual([]);
    expect(ids(await inbox.unread('second', PEER))).toEqual(['E']);
  });

  it('finds a row by cursor, and by message id across chats and accounts, filtered and ordered by cursor', async () => {
    const inbox = backend();
    // The first copy arrives undecryptable; its readable copy, stored last, moves to the highest cursor.
    const first = (await inbox.store('main', msg('X', { kind: 'undecryptable', text: null }), 'ok')).row;
    const inOther = (await inbox.store('main', msg('X', { chat: OTHER, from: OTHER }), 'ok')).row;
    const onSecond = (await inbox.store('second', msg('X'), 'ok')).row;
    const ignored = (await inbox.store('second', msg('X', { chat: OTHER, from: OTHER }), 'ignored')).row;
    await inbox.store('main', msg('Y'), 'ok');
    const moved = (await inbox.store('main', msg('X'), 'ok')).row;

    expect(await inbox.byCursor(inOther.cursor)).toEqual(inOther);
    expect(await inbox.byCursor(moved.cursor)).toEqual(moved);
    expect(await inbox.byCursor((await inbox.lastCursor()) + 1)).toBeNull();
    // The undecryptable copy's cursor is gone with it.
    expect(await inbox.byCursor(first.cursor)).toBeNull();

    expect(await inbox.byMessageId('X', { statuses: ['ok'] })).toEqual([inOther, onSecond, moved]);
    expect(await inbox.byMessageId('X', { statuses: ['ok', 'ignored'] })).toEqual([inOther, onSecond, ignored, moved]);
    expect(await inbox.byMessageId('X', { accounts: ['main'], statuses: ['ok'] })).toEqual([inOther, moved]);
    expect(await inbox.byMessageId('X', { chats: [OTHER], statuses: ['ok', 'ignored'] })).toEqual([inOther, ignored]);
    expect(await inbox.byMessageId('X', { accounts: ['second'], chats: [PEER], statuses: ['ok'] })).toEqual([onSecond]);
    expect(await inbox.byMessageId('X', { accounts: ['third'], statuses: ['ok'] })).toEqual([]);
    expect(await inbox.byMessageId('Z', { statuses: ['ok', 'undecryptable', 'ignored'] })).toEqual([]);
  });

  it('keeps a media message\'s download reference apart from the row, and replaces it when the file is uploaded again', async () => {
    const inbox = backend();
    const image = (await inbox.store('main', msg('I', { kind: 'image', text: 'a caption', media: MEDIA }), 'ok')).row;
    const text = (await inbox.store('main', msg('T'), 'ok')).row;
    expect(await inbox.mediaRef(image.cursor)).toEqual(MEDIA);
    expect(await inbox.mediaRef(text.cursor)).toBeNull();
    expect(await inbox.mediaRef(text.cursor + 1)).toBeNull();
    // The keys are secret: a row as readers get it never carries them.
    expect(await inbox.byCursor(image.cursor)).not.toHaveProperty('media');

    const reuploaded: InboundMediaRef = { ...MEDIA, directPath: '/v/t62.7118-24/again', url: 'https://mmg.whatsapp.net/v/t62.7118-24/again' };
    await inbox.updateMediaRef(image.cursor, reuploaded);
    expect(await inbox.mediaRef(image.cursor)).toEqual(reuploaded);
    expect(await inbox.mediaRef(text.cursor)).toBeNull();
    // Only the reference changes: the row keeps its cursor and content.
    expect(await inbox.byCursor(image.cursor)).toEqual(image);
  });

  it('the operator\'s prune deletes every row received before the cutoff, acknowledged or not, and says how many', async () => {
    let now = NOW;
    const inbox = backend(() => now);
    await inbox.store('main', msg('A'), 'ok');
    await inbox.store('second', msg('B'), 'ignored');
    now = NOW + 1_000;
    await inbox.store('main', msg('C'), 'ok');
    now = NOW + 2_000;
    await inbox.store('main', msg('D', { kind: 'undecryptable', text: null }), 'ok');
    const all = ['ok', 'undecryptable', 'ignored'] as const;
    // No consumer has acknowledged anything: this prune does not ask them.
    await inbox.consumers.add({ name: 'reader', type: 'stream' });

    expect(await inbox.pruneAll(NOW + 1_000)).toBe(2); // received at the cutoff stays
    expect((await inbox.list({ limit: 10, statuses: all })).map((r) => r.id)).toEqual(['C', 'D']);
    expect(await inbox.countsByAccount()).toEqual(new Map([['main', { ok: 1, undecryptable: 1 }]]));
    expect(await inbox.pruneAll(NOW + 1_000)).toBe(0);
    // A readable copy keeps its first arrival time, so its age is the first copy's.
    now = NOW + 5_000;
    await inbox.store('main', msg('D'), 'ok');
    expect(await inbox.pruneAll(NOW + 2_001)).toBe(2);
    expect(await inbox.list({ limit: 10, statuses: all })).toEqual([]);
    expect(await inbox.countsByAccount()).toEqual(new Map());
  });

  it('retention deletes old rows every consumer that reads them has acknowledged; ignored rows whatever the consumers', async () => {
    let now = NOW;
    const inbox = backend(() => now);
    await inbox.consumers.add({ name: 'main-only', type: 'stream', accounts: ['main'] });
    await inbox.consumers.add({ name: 'everyone', type: 'stream' });
    const a = (await inbox.store('main', msg('A'), 'ok')).row;
    await inbox.store('second', msg('B'), 'ok');
    await inbox.store('main', msg('C'), 'ignored');
    now = NOW + 10_000; // too recent for the cutoff below, however acknowledged
    const late = (await inbox.store('main', msg('L'), 'ok')).row;
    await inbox.store('main', msg('M'), 'ignored');
    now = NOW;
    const d = (await inbox.store('main', msg('D'), 'ok')).row;
    await inbox.store('second', msg('E'), 'ok');
    const u = (await inbox.store('main', msg('U', { kind: 'undecryptable', text: null }), 'ok')).row;
    expect(a.cursor).toBeLessThan(late.cursor);

    await inbox.consumers.ack('main-only', d.cursor); // acknowledged up to D, D included
    await inbox.consumers.ack('everyone', late.cursor);
    const ids = async () => (await inbox.list({ limit: 20, statuses: ['ok', 'undecryptable', 'ignored'] })).map((r) => r.id);
    // A, B: both acknowledged by all their readers; C: ignored. D, E, U: 'everyone' is not there yet.
    expect(await inbox.pruneAcknowledged(NOW + 1)).toBe(3);
    expect(await ids()).toEqual(['L', 'M', 'D', 'E', 'U']);

    await inbox.consumers.ack('everyone', u.cursor);
    // E is past main-only's cursor, but main-only does not read 'second': only 'everyone' keeps it.
    // U is still unacknowledged by main-only, which reads 'main'.
    expect(await inbox.pruneAcknowledged(NOW + 1)).toBe(2);
    expect(await ids()).toEqual(['L', 'M', 'U']);
    expect(await inbox.pruneAcknowledged(NOW + 1)).toBe(0);
  });

  it('an ack for a given consumer moves its cursor only while it is that consumer: same creation, same accounts', async () => {
    const inbox = backend();
    await inbox.consumers.add({ name: 'bot', type: 'stream', accounts: ['main'] });
    await inbox.consumers.add({ name: 'all', type: 'stream' });
    const a = (await inbox.store('main', msg('A'), 'ok')).row;
    const bot = (await inbox.consumers.get('bot'))!;
    const all = (await inbox.consumers.get('all'))!;
    expect(await inbox.consumers.ack('bot', a.cursor, { ...bot, accounts: ['main', 'other'] })).toBeNull();
    expect(await inbox.consumers.ack('bot', a.cursor, { ...bot, createdAt: bot.createdAt + 1 })).toBeNull();
    expect(await inbox.consumers.ack('all', a.cursor, { ...all, accounts: ['main'] })).toBeNull();
    expect(await inbox.consumers.ack('bot', a.cursor, { ...bot, type: 'webhook' })).toBeNull(); // a reload may change the type in place
    expect((await inbox.consumers.get('bot'))!.cursor).toBe(0);
    expect(await inbox.consumers.ack('bot', a.cursor, bot)).toBe(a.cursor);
    expect(await inbox.consumers.ack('all', a.cursor, all)).toBe(a.cursor); // every account: no accounts on both sides
  });

  it('retention keeps a row only for the consumers of its account: rows of an account nobody reads go', async () => {
    const inbox = backend();
    await inbox.consumers.add({ name: 'second-only', type: 'stream', accounts: ['second'] }); // cursor 0: has acknowledged nothing
    await inbox.store('main', msg('A'), 'ok');
    await inbox.store('second', msg('B'), 'ok');
    await inbox.store('third', msg('C', { kind: 'undecryptable', text: null }), 'ok');
    await inbox.store('second', msg('D', { kind: 'undecryptable', text: null }), 'ok');
    expect(await inbox.pruneAcknowledged(NOW + 1)).toBe(2);
    expect((await inbox.list({ limit: 10, statuses: ['ok', 'undecryptable', 'ignored'] })).map((r) => [r.account, r.id])).toEqual([
      ['second', 'B'],
      ['second', 'D'],
    ]);
    expect(await inbox.countsByAccount()).toEqual(new Map([['second', { ok: 1, undecryptable: 1 }]]));
  });
});

describe('inbox on PostgreSQL, shared', () => {
  it('stores a message only for an account whose lease this daemon holds', async () => {
    const notOwner = new PgInboxStore(db.pool, { fenceOf: () => null });
    const refused = notOwner.store('main', msg('A'), 'ok');
    await expect(refused).rejects.toBeInstanceOf(NotOwnerError);
    await expect(refused).rejects.toMatchObject({ account: 'main' });
    expect(await notOwner.list({ limit: 10, statuses: ['ok', 'undecryptable', 'ignored'] })).toEqual([]);
    expect(await notOwner.lastCursor()).toBe(0);

    const fence = await fenceFor('main');
    const asked: string[] = [];
    const owner = new PgInboxStore(db.pool, { fenceOf: (account) => (asked.push(account), account === 'main' ? fence : null) });
    const stored = await owner.store('main', msg('A'), 'ok');
    expect(stored).toMatchObject({ changed: true, row: { account: 'main', id: 'A', status: 'ok' } });
    await expect(owner.store('second', msg('B'), 'ok')).rejects.toBeInstanceOf(NotOwnerError);
    expect(asked).toEqual(['main', 'second']);
    expect((await owner.list({ limit: 10, statuses: ['ok'] })).map((r) => [r.account, r.id])).toEqual([['main', 'A']]);
  });

  it('every new cursor is announced on the inbox channel with the cursor; a repeated message is not', async () => {
    const listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    try {
      const payloads: string[] = [];
      let wake: () => void = () => undefined;
      listener.on('notification', (n) => {
        if (n.channel !== INBOX_CHANNEL) return;
        payloads.push(n.payload ?? '');
        wake();
      });
      // Resolves once `count` notifications have arrived (no sleeping: the notification wakes it).
      const received = (count: number) =>
        new Promise<void>((resolve) => {
          wake = () => void (payloads.length >= count && resolve());
          wake();
        });
      await listener.query(`LISTEN ${INBOX_CHANNEL}`);

      const s = new PgInboxStore(db.pool);
      const fence = await fenceFor('main');
      const a = await s.storeFenced(fence, msg('A'), 'ok');
      await received(1);
      expect(payloads).toEqual([String(a.row.cursor)]);
      expect((await s.storeFenced(fence, msg('A'), 'ok')).changed).toBe(false);
      // Had the repeat been announced, its notification would arrive before B's.
      const b = await s.storeFenced(fence, msg('B'), 'ok');
      await received(2);
      expect(payloads).toEqual([String(a.row.cursor), String(b.row.cursor)]);
    } finally {
      await listener.end();
    }
  });

  it('a daemon whose lease moved stores nothing', async () => {
    const s = new PgInboxStore(db.pool);
    const old = await fenceFor('main');
    await s.storeFenced(old, msg('A'), 'ok');
    await db.pool.query("UPDATE wa_leases SET owner = 'other', epoch = epoch + 1 WHERE account = 'main'");
    await expect(s.storeFenced(old, msg('B'), 'ok')).rejects.toBeInstanceOf(FencedError);
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
        for (let i = 0; i < 25; i++) await s.storeFenced(fence, msg(`${w}-${i}`, { text: i % 8 === 3 ? 'slow' : `text ${i}` }), 'ok');
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
    const first = s.storeFenced(fence, msg('X', { kind: 'undecryptable', text: null }), 'ok');
    // Until the first copy is inside its sleep (its row inserted, not committed).
    while ((await db.pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'PgSleep'")).rows[0].n === 0);
    const second = s.storeFenced(fence, msg('X'), 'ok');
    const [a, b] = await Promise.all([first, second]);
    expect([a.row.kind, b.changed, b.row.kind, b.row.text]).toEqual(['undecryptable', true, 'text', 'text of X']);
    expect(b.row.receivedAt).toBe(a.row.receivedAt);
    expect((await s.list({ limit: 10, statuses: ['ok', 'undecryptable'] })).map((r) => [r.id, r.kind])).toEqual([['X', 'text']]);
  });
});
