import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConsumerStore } from '../../src/inbox/consumers.js';
import { InboxStore, inboxRowToJson } from '../../src/inbox/store.js';
import { closeStateDb, openStateDb, type StateDb } from '../../src/store/db.js';
import type { InboundMessage } from '../../src/wa/types.js';
import { makeTmpDir } from '../helpers/tmp.js';

const PEER = '15550002222@s.whatsapp.net';
const OTHER = '15550003333@s.whatsapp.net';

let tmp: { dir: string; cleanup: () => void };
let db: StateDb;
let store: InboxStore;

beforeEach(() => {
  tmp = makeTmpDir('wa-inbox-');
  db = openStateDb(tmp.dir);
  store = new InboxStore(db, { now: () => 1_700_000_000_000 });
});
afterEach(() => {
  closeStateDb(db);
  tmp.cleanup();
});

function msg(id: string, over: Partial<InboundMessage> = {}): InboundMessage {
  return { id, chat: PEER, from: PEER, chatType: 'direct', kind: 'text', text: `text of ${id}`, timestamp: 1_700_000_000, ...over };
}

describe('InboxStore', () => {
  it('stores a message once: the same (account, chat, id) again changes nothing', () => {
    const first = store.store('main', msg('A'), 'ok');
    expect(first.changed).toBe(true);
    const again = store.store('main', msg('A', { text: 'a redelivered copy', offline: true }), 'ok');
    expect(again).toEqual({ row: first.row, changed: false });
    expect(store.list({ limit: 10, statuses: ['ok'] })).toHaveLength(1);
    // the same id in another chat or another account is another message
    expect(store.store('main', msg('A', { chat: OTHER, from: OTHER }), 'ok').changed).toBe(true);
    expect(store.store('second', msg('A'), 'ok').changed).toBe(true);
    expect(store.list({ limit: 10, statuses: ['ok'] })).toHaveLength(3);
  });

  it('gives cursors that only grow, across a reopen and after rows are deleted', () => {
    const a = store.store('main', msg('A'), 'ok').row.cursor;
    const b = store.store('main', msg('B'), 'ok').row.cursor;
    expect(b).toBeGreaterThan(a);
    db.prepare('DELETE FROM inbox WHERE cursor = ?').run(b);
    closeStateDb(db);
    db = openStateDb(tmp.dir);
    store = new InboxStore(db);
    expect(store.lastCursor()).toBe(b);
    const c = store.store('main', msg('C'), 'ok').row.cursor;
    expect(c).toBeGreaterThan(b);
  });

  it('an undecryptable row that later decrypts moves to a new cursor with its content; a readable row is never downgraded', () => {
    const bad = store.store('main', msg('A', { kind: 'undecryptable', text: null, detail: { error: 'Bad MAC' } }), 'ok');
    expect(bad.row).toMatchObject({ status: 'undecryptable', kind: 'undecryptable', text: null });
    expect(store.countsByAccount().get('main')).toEqual({ undecryptable: 1 });
    const later = store.store('main', msg('B'), 'ok').row.cursor;
    const good = store.store('main', msg('A'), 'ok');
    expect(good.changed).toBe(true);
    expect(good.row).toMatchObject({ status: 'ok', kind: 'text', text: 'text of A', receivedAt: bad.row.receivedAt });
    expect(good.row.cursor).toBeGreaterThan(later);
    const worse = store.store('main', msg('A', { kind: 'undecryptable', text: null }), 'ok');
    expect(worse).toEqual({ row: good.row, changed: false });
    expect(store.list({ limit: 10, statuses: ['ok', 'undecryptable'] }).map((r) => r.id)).toEqual(['B', 'A']);
  });

  it('lists after a cursor, oldest first, by account, chat and status', () => {
    store.store('main', msg('A'), 'ok');
    store.store('main', msg('B', { chat: OTHER, from: OTHER }), 'ok');
    store.store('main', msg('C'), 'ignored');
    store.store('second', msg('D'), 'ok');
    const all = store.list({ limit: 10, statuses: ['ok', 'undecryptable', 'ignored'] });
    expect(all.map((r) => r.id)).toEqual(['A', 'B', 'C', 'D']);
    expect(store.list({ limit: 10, statuses: ['ok'], after: all[0]!.cursor }).map((r) => r.id)).toEqual(['B', 'D']);
    expect(store.list({ limit: 10, statuses: ['ok'], accounts: ['main'] }).map((r) => r.id)).toEqual(['A', 'B']);
    expect(store.list({ limit: 10, statuses: ['ok'], chats: [OTHER] }).map((r) => r.id)).toEqual(['B']);
    expect(store.list({ limit: 10, statuses: ['ignored'] }).map((r) => r.id)).toEqual(['C']);
    expect(store.list({ limit: 1, statuses: ['ok'] }).map((r) => r.id)).toEqual(['A']);
    expect(store.countsByAccount()).toEqual(new Map([['main', { ok: 2, ignored: 1 }], ['second', { ok: 1 }]]));
  });

  it('keeps counts per account in memory through every write, equal to a fresh count of the table', () => {
    let now = 1_000;
    store = new InboxStore(db, { now: () => now });
    store.store('main', msg('A', { kind: 'undecryptable', text: null }), 'ok');
    expect(store.countsByAccount().get('main')).toEqual({ undecryptable: 1 }); // loaded here
    store.store('main', msg('B'), 'ok');
    store.store('main', msg('C'), 'ignored');
    store.store('main', msg('A'), 'ok'); // decrypts: undecryptable -> ok
    store.store('main', msg('B'), 'ok'); // the same message again: no change
    store.store('second', msg('D'), 'ok');
    const fresh = () => new InboxStore(db).countsByAccount();
    expect(store.countsByAccount()).toEqual(new Map([['main', { ok: 2, ignored: 1 }], ['second', { ok: 1 }]]));
    expect(store.countsByAccount()).toEqual(fresh());
    // Read from memory: a row deleted behind the store's back is still counted ...
    db.prepare("DELETE FROM inbox WHERE id = 'D'").run();
    expect(store.countsByAccount().get('second')).toEqual({ ok: 1 });
    // ... and a copy: changing it changes nothing.
    store.countsByAccount().get('main')!.ok = 99;
    expect(store.countsByAccount().get('main')).toEqual({ ok: 2, ignored: 1 });
    // Retention deletes across accounts; the next read counts the table again.
    now = 9_000;
    store.store('second', msg('E'), 'ok');
    expect(store.pruneAll(5_000)).toBe(3);
    expect(store.countsByAccount()).toEqual(new Map([['second', { ok: 1 }]]));
    expect(store.countsByAccount()).toEqual(fresh());
  });

  it('retention keeps an old row until every consumer that should see it has acknowledged it; the operator prune does not wait', () => {
    let now = 1_000;
    store = new InboxStore(db, { now: () => now });
    const consumers = new ConsumerStore(db, { now: () => now });
    consumers.add({ name: 'all', type: 'stream' });
    consumers.add({ name: 'second-only', type: 'stream', accounts: ['second'] });
    const a = store.store('main', msg('A'), 'ok').row;
    const b = store.store('second', msg('B'), 'ok').row;
    store.store('main', msg('C'), 'ignored'); // nobody should see it: age alone decides
    now = 5_000;
    const fresh = store.store('main', msg('D'), 'ok').row;
    const ids = () => store.list({ limit: 10, statuses: ['ok', 'ignored'] }).map((r) => r.id);
    expect(store.pruneAcknowledged(2_000)).toBe(1); // C
    expect(ids()).toEqual(['A', 'B', 'D']);
    consumers.ack('all', b.cursor);
    expect(store.pruneAcknowledged(2_000)).toBe(1); // A: only "all" should see it, and acked it
    expect(ids()).toEqual(['B', 'D']);
    consumers.ack('second-only', b.cursor);
    expect(store.pruneAcknowledged(2_000)).toBe(1); // B
    consumers.ack('all', fresh.cursor);
    expect(store.pruneAcknowledged(2_000)).toBe(0); // D is not old enough
    expect(a.cursor).toBeLessThan(fresh.cursor);
    store.store('second', msg('E'), 'ok');
    now = 9_000;
    expect(store.pruneAll(8_000)).toBe(2); // D and E, though "second-only" never acked E
  });

  it('shows a row with the public field names, the cursor as a string', () => {
    const { row } = store.store('main', msg('A', { kind: 'image', text: 'caption', detail: { mimetype: 'image/jpeg' }, offline: true }), 'ok');
    expect(inboxRowToJson(row)).toEqual({
      cursor: String(row.cursor),
      id: 'A',
      account: 'main',
      chat: PEER,
      from: PEER,
      chatType: 'direct',
      kind: 'image',
      text: 'caption',
      timestamp: 1_700_000_000,
      receivedAt: new Date(1_700_000_000_000).toISOString(),
      status: 'ok',
      detail: { mimetype: 'image/jpeg' },
      offline: true,
    });
  });
});
