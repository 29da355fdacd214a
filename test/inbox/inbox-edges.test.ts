// The inbox at its edges (following ignored rows, an explicit prune by mistake, a database from
// before migration 10, allowFrom with LID entries), each test asserting what docs/inbox.md promises.
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventBus } from '../../src/events/bus.js';
import { ConsumerStore } from '../../src/inbox/consumers.js';
import { followInbox } from '../../src/inbox/follow.js';
import { Inbox } from '../../src/inbox/inbox.js';
import { InboxStore } from '../../src/inbox/store.js';
import { chatReadRoute, inboxRoutes, parseInboxQuery } from '../../src/control/inbox-routes.js';
import { closeStateDb, openStateDb, type StateDb } from '../../src/store/db.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { PEER, inboundMessage as msg, sink } from './support.js';
import Database from 'better-sqlite3';
import { join } from 'node:path';

const PEER_LID = '123456789012345@lid';
const STRANGER = '15550009999@s.whatsapp.net';

let tmp: { dir: string; cleanup: () => void };
let db: StateDb;
let inbox: Inbox<InboxStore>;

beforeEach(() => {
  tmp = makeTmpDir('wa-inbox-');
  db = openStateDb(tmp.dir);
  inbox = new Inbox({ store: new InboxStore(db), bus: new EventBus(), log: pino({ level: 'silent' }), allowFrom: { guarded: [PEER] } });
});
afterEach(() => {
  if (db.open) closeStateDb(db);
  tmp.cleanup();
});

describe('follow of ignored rows', () => {
  it('/v1/inbox/follow refuses status=ignored (and all): ignored messages are never followed', () => {
    expect(() => parseInboxQuery(new URLSearchParams('status=ignored'), { follow: true })).toThrow(/not followed/);
    expect(() => parseInboxQuery(new URLSearchParams('status=all'), { follow: true })).toThrow(/not followed/);
    expect(parseInboxQuery(new URLSearchParams('status=ignored'), { follow: false }).statuses).toEqual(['ignored']);
  });
});

describe('explicit prune', () => {
  it('"--older-than 30" (no unit) does not delete the whole inbox, unacknowledged rows included', async () => {
    const store = inbox.store;
    const consumers = new ConsumerStore(db);
    consumers.add({ name: 'bot', type: 'stream' }); // has acknowledged nothing
    db.prepare('INSERT INTO inbox (account, chat, id, sender, chat_type, kind, text, status, timestamp, received_at) VALUES (?,?,?,?,?,?,?,?,?,?)')
      .run('main', PEER, 'OLD', PEER, 'direct', 'text', 'a minute old', 'ok', 0, Date.now() - 60_000);
    const route = inboxRoutes(inbox).find((r) => r.path === '/v1/inbox/prune')!;
    // what `wa-supervisor inbox prune --older-than 30` sends
    let answer: unknown;
    try {
      answer = await route.handler({ json: async () => ({ olderThan: '30' }) } as never);
    } catch (err) {
      answer = { refused: (err as Error).message };
    }
    console.log(JSON.stringify(answer));
    expect(store.list({ limit: 10, statuses: ['ok'] })).toHaveLength(1);
  });
});

describe('migration 7 as first published', () => {
  it('a database created before read_at was added to migration 7 can still mark chats read', () => {
    closeStateDb(db);
    const dir = makeTmpDir('wa-old-db-');
    try {
      // a state.db made by commit 7dd48df: migrations 1-6 as today, 7 without read_at, then 8-9
      const old = new Database(join(dir.dir, 'state.db'));
      old.pragma('journal_mode = WAL');
      old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
      for (const m of MIGRATIONS) {
        if (m.version === 7) {
          old.exec(`CREATE TABLE inbox (cursor INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, chat TEXT NOT NULL, id TEXT NOT NULL,
            sender TEXT NOT NULL, chat_type TEXT NOT NULL, kind TEXT NOT NULL, text TEXT, detail TEXT, status TEXT NOT NULL,
            offline INTEGER NOT NULL DEFAULT 0, timestamp INTEGER NOT NULL, received_at INTEGER NOT NULL, UNIQUE (account, chat, id));
            CREATE INDEX inbox_by_account ON inbox (account, cursor);`);
        } else m.up(old);
        old.prepare('INSERT INTO schema_migrations VALUES (?, ?, 0)').run(m.version, m.name);
      }
      old.close();
      db = openStateDb(dir.dir); // today's code: nothing to migrate
      const store = new InboxStore(db);
      store.store('main', msg(), 'ok');
      let error: string | null = null;
      try {
        store.unread('main', PEER);
      } catch (err) {
        error = (err as Error).message;
      }
      console.log(JSON.stringify({ unreadError: error }));
      expect(error).toBeNull();
    } finally {
      closeStateDb(db);
      dir.cleanup();
    }
  });
});

describe('allowFrom with a LID entry', () => {
  it('a LID listed in allowFrom admits that person when the stanza is addressed by phone number', () => {
    const lidInbox = new Inbox({
      store: new InboxStore(db),
      bus: new EventBus(),
      log: pino({ level: 'silent' }),
      allowFrom: { guarded: [PEER_LID] },
      phoneJidForLid: (_a, jid) => (jid === PEER_LID ? PEER : null), // the account knows the mapping
    });
    const viaLid = lidInbox.receive('guarded', msg({ chat: PEER_LID, from: PEER_LID })).row.status;
    const viaPhone = lidInbox.receive('guarded', msg()).row.status;
    console.log(JSON.stringify({ viaLid, viaPhone }));
    expect(viaPhone).toBe('ok');
  });
});

describe('a person known by number and by LID', () => {
  // Baileys reports many contacts' messages in their LID chat; a reader asks by phone number.
  function lidAwareInbox(): Inbox<InboxStore> {
    return new Inbox({
      store: new InboxStore(db),
      bus: new EventBus(),
      log: pino({ level: 'silent' }),
      lidJidForPhone: (_account, jid) => (jid === PEER ? PEER_LID : null),
      phoneJidForLid: (_account, jid) => (jid === PEER_LID ? PEER : null),
    });
  }

  it('GET /v1/inbox?chat=<number> also lists the messages that came in the LID chat', async () => {
    const lidInbox = lidAwareInbox();
    const byPhone = lidInbox.receive('main', msg()).row;
    const byLid = lidInbox.receive('main', msg({ chat: PEER_LID, from: PEER_LID })).row;
    lidInbox.receive('main', msg({ chat: STRANGER, from: STRANGER }));
    const route = inboxRoutes(lidInbox).find((r) => r.path === '/v1/inbox')!;
    for (const chat of ['+15550002222', PEER_LID]) {
      const answer = (await route.handler({ url: new URL(`http://x/v1/inbox?chat=${encodeURIComponent(chat)}`), caller: { role: 'operator' } } as never)) as { body: { messages: Array<{ id: string }> } };
      expect(answer.body.messages.map((m) => m.id)).toEqual([byPhone.id, byLid.id]);
    }
  });

  it('POST /v1/chats/read by number sends each chat its own receipt, through the gate, and marks both read', async () => {
    const lidInbox = lidAwareInbox();
    const byPhone = lidInbox.receive('main', msg()).row;
    const byLid = lidInbox.receive('main', msg({ chat: PEER_LID, from: PEER_LID })).row;
    const sent: Array<{ chat: string; ids: string[] }> = [];
    const gate = {
      sendReadReceipts: async (input: { chat: string; messages: ReadonlyArray<{ id: string }> }) => {
        sent.push({ chat: input.chat, ids: input.messages.map((m) => m.id) });
        return { decision: { action: 'allow' as const, rule: null, reason: 'default allow' }, sent: input.messages.length > 0 };
      },
    };
    const route = chatReadRoute(lidInbox, gate as never);
    const answer = (await route.handler({ json: async () => ({ account: 'main', chat: '+15550002222' }), caller: { role: 'operator' } } as never)) as { body: { state: string; marked: number } };
    expect(answer.body).toMatchObject({ state: 'sent', marked: 2 });
    expect(sent).toEqual([
      { chat: PEER, ids: [byPhone.id] },
      { chat: PEER_LID, ids: [byLid.id] },
    ]);
    expect(lidInbox.store.unread('main', [PEER, PEER_LID])).toEqual([]);
  });
});
