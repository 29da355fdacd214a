import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventBus, type BusEvent } from '../../src/events/bus.js';
import { FOLLOW_PAGE, followInbox, type FollowSink } from '../../src/inbox/follow.js';
import { Inbox } from '../../src/inbox/inbox.js';
import { InboxStore, type InboxRow } from '../../src/inbox/store.js';
import { pino } from 'pino';
import { closeStateDb, openStateDb, type StateDb } from '../../src/store/db.js';
import type { WaEvent } from '../../src/wa/types.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { PEER, inboundMessage as msg } from './support.js';

const STRANGER = '15550009999@s.whatsapp.net';
const GROUP = '120363025246125888@g.us';
const LID = '123456789012345@lid';

let tmp: { dir: string; cleanup: () => void };
let db: StateDb;
let bus: EventBus;
let events: BusEvent[];
let inbox: Inbox<InboxStore>;

beforeEach(() => {
  tmp = makeTmpDir('wa-inbox-');
  db = openStateDb(tmp.dir);
  bus = new EventBus();
  events = [];
  bus.subscribe({}, (e) => events.push(e));
  inbox = new Inbox({
    store: new InboxStore(db),
    bus,
    log: pino({ level: 'silent' }),
    allowFrom: { guarded: [PEER, GROUP] },
    phoneJidForLid: (_account, jid) => (jid === LID ? PEER : null),
  });
});
afterEach(() => {
  closeStateDb(db);
  tmp.cleanup();
});

describe('Inbox', () => {
  it('publishes message.inbound after the commit, with the cursor, and only once per message', () => {
    const m = msg();
    let seenInDb = false;
    bus.subscribe({ types: ['message.inbound'] }, () => (seenInDb = inbox.store.list({ limit: 5, statuses: ['ok'] }).length === 1));
    inbox.receive('main', m);
    inbox.receive('main', { ...m, offline: true });
    const published = events.filter((e) => e.type === 'message.inbound');
    expect(published).toHaveLength(1);
    expect(published[0]).toMatchObject({ account: 'main', id: m.id, text: m.text, kind: 'text', status: 'ok', cursor: expect.stringMatching(/^\d+$/) });
    expect(seenInDb).toBe(true);
  });

  it('allowFrom: a sender not on the list is stored as ignored and never published or followed; listed senders, their LID and listed groups pass', () => {
    const followed: InboxRow[] = [];
    inbox.follow((row) => followed.push(row));
    const stranger = inbox.receive('guarded', msg({ chat: STRANGER, from: STRANGER, text: 'buy now' }));
    expect(stranger.row.status).toBe('ignored');
    expect(inbox.receive('guarded', msg()).row.status).toBe('ok');
    expect(inbox.receive('guarded', msg({ chat: LID, from: LID })).row.status).toBe('ok');
    expect(inbox.receive('guarded', msg({ chat: GROUP, from: STRANGER, chatType: 'group' })).row.status).toBe('ok');
    expect(inbox.receive('guarded', msg({ chat: '120363000000000001@g.us', from: STRANGER, chatType: 'group' })).row.status).toBe('ignored');
    // other accounts have no list
    expect(inbox.receive('open', msg({ chat: STRANGER, from: STRANGER })).row.status).toBe('ok');
    expect(followed.map((r) => r.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
    const ignored = events.filter((e) => e.type === 'message.ignored');
    expect(ignored).toHaveLength(2);
    expect(JSON.stringify(ignored)).not.toContain('buy now');
    expect(events.filter((e) => e.type === 'message.inbound' && e.account === 'guarded')).toHaveLength(3);
    // the list can change at run time (reload)
    inbox.setAllowFrom({});
    expect(inbox.receive('guarded', msg({ chat: STRANGER, from: STRANGER })).row.status).toBe('ok');
  });

  it('a failed commit throws to the caller (the connection then sends no delivery receipt) and publishes nothing', () => {
    closeStateDb(db);
    expect(() => inbox.receive('main', msg())).toThrow();
    expect(events.filter((e) => e.type === 'message.inbound')).toHaveLength(0);
    db = openStateDb(tmp.dir);
  });

  it('attaches to an account and stores what its connections emit; detach stops it', () => {
    const listeners = new Set<(e: WaEvent) => void>();
    const account = { onConnectionEvent: (l: (e: WaEvent) => void) => (listeners.add(l), () => listeners.delete(l)) };
    inbox.attach('main', account);
    inbox.attach('main', account); // re-attaching replaces
    expect(listeners.size).toBe(1);
    for (const l of listeners) l({ type: 'inbound', message: msg() });
    expect(inbox.store.list({ limit: 5, statuses: ['ok'] })).toHaveLength(1);
    inbox.detach('main');
    expect(listeners.size).toBe(0);
    expect(inbox.attachedCount).toBe(0);
  });
});

/** A sink whose first `drained()` lets the test commit rows in the middle of the catch-up. */
function sink(onFirstDrain: () => void): FollowSink & { rows: InboxRow[]; close(): void } {
  const closers: Array<() => void> = [];
  let closed = false;
  let drains = 0;
  const s = {
    rows: [] as InboxRow[],
    write(row: InboxRow) {
      s.rows.push(row);
      return s.rows.length % 50 !== 0; // "buffer full" now and then
    },
    async drained() {
      drains += 1;
      if (drains === 1) onFirstDrain();
      await new Promise((r) => setImmediate(r));
    },
    get closed() {
      return closed;
    },
    onClose(fn: () => void) {
      closers.push(fn);
    },
    close() {
      closed = true;
      for (const fn of closers) fn();
    },
  };
  return s;
}

describe('followInbox', () => {
  it('catches up from a cursor, then goes live: no row missed or repeated, also for rows committed during the catch-up', async () => {
    const before = FOLLOW_PAGE + 120;
    for (let i = 0; i < before; i++) inbox.receive('main', msg());
    const start = inbox.store.list({ limit: 1, statuses: ['ok'] })[0]!.cursor; // follow after the first row
    const s = sink(() => {
      for (let i = 0; i < 30; i++) inbox.receive('main', msg());
    });
    await followInbox(inbox, { after: start, statuses: ['ok', 'undecryptable'] }, s);
    for (let i = 0; i < 10; i++) inbox.receive('main', msg());
    inbox.receive('main', msg({ chat: STRANGER, from: STRANGER, kind: 'undecryptable', text: null }));
    const expected = inbox.store.list({ limit: 10_000, statuses: ['ok', 'undecryptable'], after: start }).map((r) => r.cursor);
    expect(expected).toHaveLength(before - 1 + 30 + 10 + 1);
    expect(s.rows.map((r) => r.cursor)).toEqual(expected);
    s.close();
    inbox.receive('main', msg());
    expect(s.rows).toHaveLength(expected.length);
  });

  it('holds nothing while a slow reader catches up: rows that arrive meanwhile wait in the database, and backpressure holds for them too', async () => {
    for (let i = 0; i < 5; i++) inbox.receive('main', msg());
    const rows: number[] = [];
    let writesSinceDrain = 0;
    let mostWritesBeforeADrain = 0;
    let release: (() => void) | null = null;
    const s: FollowSink = {
      write: (row) => {
        rows.push(row.cursor);
        writesSinceDrain += 1;
        mostWritesBeforeADrain = Math.max(mostWritesBeforeADrain, writesSinceDrain);
        return false; // the reader's buffer is always full
      },
      drained: () =>
        new Promise<void>((resolve) => {
          writesSinceDrain = 0;
          release = resolve;
        }),
      closed: false,
      onClose: () => {},
    };
    const following = followInbox(inbox, { statuses: ['ok'] }, s);
    // While the reader is stuck on its first rows, 2,000 more arrive.
    for (let i = 0; i < 2_000; i++) inbox.receive('main', msg());
    while (rows.length < 2_005) {
      await new Promise((r) => setImmediate(r));
      const next = release as (() => void) | null;
      release = null;
      next?.();
    }
    await following;
    expect(rows).toEqual(inbox.store.list({ limit: 10_000, statuses: ['ok'] }).map((r) => r.cursor));
    // One row per drain: the rows that arrived during the catch-up were read page by page from the
    // database, not held in memory and written in one burst when the catch-up ended.
    expect(mostWritesBeforeADrain).toBe(1);
  });

  it('follows only what the query asks for', async () => {
    const s = sink(() => {});
    await followInbox(inbox, { accounts: ['guarded'], statuses: ['ok'] }, s);
    inbox.receive('main', msg());
    inbox.receive('guarded', msg({ chat: STRANGER, from: STRANGER })); // ignored
    inbox.receive('guarded', msg());
    expect(s.rows.map((r) => [r.account, r.status])).toEqual([['guarded', 'ok']]);
  });
});
