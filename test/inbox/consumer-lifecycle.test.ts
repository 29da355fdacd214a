// Consumers at their edges (stream acks, open streams across config changes, webhook races,
// dead letters), each test asserting the behaviour docs/inbox.md promises.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventBus } from '../../src/events/bus.js';
import { consumerRoutes } from '../../src/control/consumer-routes.js';
import type { Caller } from '../../src/control/roles.js';
import type { ApiRequest } from '../../src/control/server.js';
import { ANY_READER, type ConsumerService } from '../../src/inbox/consumer-service.js';
import { Inbox } from '../../src/inbox/inbox.js';
import { InboxStore, type InboxQuery, type InboxRow } from '../../src/inbox/store.js';
import { DEFAULT_WEBHOOK_SETTINGS, type Poster, type StuckContext } from '../../src/inbox/webhook.js';
import { closeStateDb, openStateDb, type StateDb } from '../../src/store/db.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { SECRET, consumerService, inboundMessage, type ServiceOptions, silentLog, sink, until } from './support.js';

let tmp: { dir: string; cleanup: () => void };
let db: StateDb;
let inboxStore: InboxStore;
let inbox: Inbox<InboxStore>;
let service: ReturnType<typeof consumerService> | undefined;
let clock = 1_700_000_000_000;

beforeEach(() => {
  tmp = makeTmpDir('wa-consumers-');
  db = openStateDb(tmp.dir);
  inboxStore = new InboxStore(db, { now: () => clock });
  inbox = new Inbox({ store: inboxStore, bus: new EventBus(), log: silentLog });
});
afterEach(async () => {
  await service?.stop();
  service = undefined;
  closeStateDb(db);
  tmp.cleanup();
});

function receive(account = 'main'): InboxRow {
  return inbox.receive(account, inboundMessage()).row;
}

function makeService(opts: Omit<ServiceOptions, 'now'> = {}): ReturnType<typeof consumerService> {
  service = consumerService(db, inbox, { ...opts, now: () => clock });
  return service;
}

describe('stream consumer acks', () => {
  it('an ack cannot move past rows the consumer was never given', async () => {
    const svc = makeService();
    await svc.add({ name: 'bot', type: 'stream', accounts: ['main'] });
    const given = receive('main'); // the only row of its account
    const s = sink();
    await svc.openStream('bot', () => s, ANY_READER);
    await until(() => s.rows.length === 1);
    // rows of another account push the global cursor on; none of them is this consumer's
    for (let i = 0; i < 5; i++) receive('other');
    const newest = inboxStore.lastCursor();
    // a bot acks "the newest cursor" (from GET /v1/inbox, status, or a guess): refused
    await expect(svc.ack('bot', newest, ANY_READER)).rejects.toThrow(/never given/);
    expect(await svc.ack('bot', given.cursor, ANY_READER)).toBe(given.cursor);
    s.close();
    // a reader gone does not widen what can be acknowledged
    await expect(svc.ack('bot', newest, ANY_READER)).rejects.toThrow(/never given/);
  });
});

describe('open streams across config changes', () => {
  it('narrowing a stream consumer\'s accounts on reload applies to the reader already connected', async () => {
    const svc = makeService();
    await svc.applyConfig([{ name: 'bot', type: 'stream' }], { ...DEFAULT_WEBHOOK_SETTINGS });
    const s = sink();
    await svc.openStream('bot', () => s, ANY_READER);
    receive('main');
    // the operator takes the sensitive account away from this bot and reloads
    await svc.applyConfig([{ name: 'bot', type: 'stream', accounts: ['main'] }], { ...DEFAULT_WEBHOOK_SETTINGS });
    receive('private');
    await new Promise((r) => setTimeout(r, 10));
    console.log(JSON.stringify({ accountsSeenAfterReload: s.rows.map((r) => r.account) }));
    expect(s.rows.map((r) => r.account)).not.toContain('private');
  });

  it('a removed consumer\'s reader is closed, and cannot ack into a new consumer of the same name', async () => {
    const svc = makeService();
    await svc.add({ name: 'bot', type: 'stream' });
    for (let i = 0; i < 3; i++) receive();
    const s = sink();
    await svc.openStream('bot', () => s, ANY_READER);
    await until(() => s.rows.length === 3);
    await svc.remove('bot');
    const stillOpen = !s.closed;
    // re-created to start over from cursor 0 ("a new consumer starts at cursor 0")
    await svc.add({ name: 'bot', type: 'stream' });
    let newReader = 'opened';
    try {
      await svc.openStream('bot', () => sink(), ANY_READER);
    } catch (err) {
      newReader = (err as Error).message;
    }
    // the old reader's late ack lands on the new consumer
    const movedTo = await svc.ack('bot', s.rows[2]!.cursor, ANY_READER);
    console.log(JSON.stringify({ oldReaderStillOpen: stillOpen, newReader, newConsumerCursorAfterOldAck: movedTo }));
    expect(stillOpen).toBe(false);
  });
});

describe('webhook delivery', () => {
  it('an in-flight POST of a removed consumer does not acknowledge for a re-added consumer of the same name', async () => {
    let release!: (status: number) => void;
    let calls = 0;
    const post: Poster = () => {
      calls += 1;
      if (calls === 1) return new Promise<number>((r) => (release = r));
      return Promise.resolve(500); // every delivery to the new consumer fails
    };
    const svc = makeService({ post, settings: { retryInitialMs: 60_000, retryMaxMs: 60_000 } });
    await svc.add({ name: 'hook', type: 'webhook', url: 'http://127.0.0.1:9/x', secret: SECRET });
    const row = receive();
    await until(() => calls === 1);
    const removing = svc.remove('hook'); // waits for the in-flight POST
    await svc.add({ name: 'hook', type: 'webhook', url: 'http://127.0.0.1:9/other', secret: SECRET }); // concurrent re-add
    await until(() => calls >= 2);
    release(200); // the old receiver answers the old POST
    await removing;
    await new Promise((r) => setTimeout(r, 10));
    const c = svc.store.get('hook')!;
    console.log(JSON.stringify({ row: row.cursor, newConsumerCursor: c.cursor, attempts: c.attempts, lastError: c.lastError }));
    expect(c.cursor).toBe(0);
  });

  it('a message older than deadLetterAfterMs gets more than one attempt before it is dead-lettered', async () => {
    // a 2-day-old message in the inbox; a webhook consumer is added today (it starts at cursor 0)
    receive();
    clock += 2 * 24 * 3600 * 1000;
    let calls = 0;
    const stuck: StuckContext[] = [];
    const svc = makeService({ post: async () => (++calls === 1 ? 503 : 200), onStuck: (c) => stuck.push(c) });
    await svc.add({ name: 'hook', type: 'webhook', url: 'http://127.0.0.1:9/x', secret: SECRET });
    await until(() => svc.store.get('hook')!.cursor > 0);
    console.log(JSON.stringify({ posts: calls, deadLetters: svc.store.deadLetters('hook').length, alerts: stuck.length }));
    // one transient 503 from a receiver that was just deploying: the message is dead at once
    expect(svc.store.deadLetters('hook')).toHaveLength(0);
  });
});

describe('webhook loop after a failed commit', () => {
  it('a commit that fails once (the ack after a 2xx) does not stop delivery for good', async () => {
    const posted: string[] = [];
    const post: Poster = async (_url, body) => (posted.push(JSON.parse(body).deliveryId), 200);
    const svc = makeService({ post });
    await svc.add({ name: 'hook', type: 'webhook', url: 'http://127.0.0.1:9/x', secret: SECRET });
    // the database refuses the next cursor commit once (disk full, I/O error, ...)
    db.exec(`CREATE TABLE fail_once (n INTEGER); INSERT INTO fail_once VALUES (1);
      CREATE TRIGGER refuse_ack BEFORE UPDATE OF cursor ON inbox_consumers WHEN (SELECT n FROM fail_once) = 1
      BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;`);
    receive();
    await until(() => posted.length === 1);
    await new Promise((r) => setTimeout(r, 10));
    db.exec('UPDATE fail_once SET n = 0'); // the disk has room again
    receive();
    await new Promise((r) => setTimeout(r, 100));
    const c = await svc.get('hook');
    console.log(JSON.stringify({ posted, cursor: c.cursor, lag: c.lag.unacknowledged, lastError: c.lastError }));
    expect(c.lag.unacknowledged).toBe(0);
  });
});

// Pull reads (GET /v1/inbox/next): what they hand out is what can be acknowledged, never while a
// stream reader is connected, and never for a consumer that was replaced while the read ran.
describe('a pull read', () => {
  it('hands its accounts\' rows after the committed cursor, a page at a time, and what it handed can be acknowledged', async () => {
    const svc = makeService();
    await svc.add({ name: 'bot', type: 'stream', accounts: ['main'] });
    const mine = [receive(), receive('other'), receive(), receive()];
    const first = await svc.next('bot', 2, ANY_READER);
    expect(first.rows.map((r) => r.cursor)).toEqual([mine[0]!.cursor, mine[2]!.cursor]);
    expect(first.committed).toBe(0);
    // Not past what was handed out (the fourth row was not).
    await expect(svc.ack('bot', mine[3]!.cursor, ANY_READER)).rejects.toThrow(/never given/);
    expect(await svc.ack('bot', mine[2]!.cursor, ANY_READER)).toBe(mine[2]!.cursor);
    const second = await svc.next('bot', 10, ANY_READER);
    expect(second).toEqual({ rows: [expect.objectContaining({ cursor: mine[3]!.cursor })], committed: mine[2]!.cursor });
  });

  it('is refused while a stream reader is connected, and allowed once it left', async () => {
    const svc = makeService();
    await svc.add({ name: 'bot', type: 'stream', accounts: ['main'] });
    receive();
    const reader = sink();
    await svc.openStream('bot', () => reader, ANY_READER);
    await until(() => reader.rows.length === 1);
    await expect(svc.next('bot', 10, ANY_READER)).rejects.toThrow(/has a stream reader connected/);
    reader.close();
    expect((await svc.next('bot', 10, ANY_READER)).rows).toHaveLength(1);
  });

  it('a read that was running while its consumer was removed and added again counts for nothing', async () => {
    const svc = makeService();
    await svc.add({ name: 'bot', type: 'stream', accounts: ['main'] });
    const rows = [receive(), receive(), receive()];
    // The store answers the read only when told to.
    const list = inboxStore.list.bind(inboxStore);
    let answer!: () => void;
    (inboxStore as unknown as { list: (q: InboxQuery) => Promise<InboxRow[]> }).list = (q) => new Promise((resolve) => (answer = () => resolve(list(q))));
    const reading = svc.next('bot', 10, ANY_READER);
    await until(() => answer !== undefined);
    await svc.remove('bot');
    await svc.add({ name: 'bot', type: 'stream', accounts: ['main'] });
    answer();
    await expect(reading).rejects.toThrow(/changed while it was read/);
    // The consumer now is a new one at cursor 0 that was handed nothing.
    await expect(svc.ack('bot', rows[2]!.cursor, ANY_READER)).rejects.toThrow(/never given/);
  });

  it('a client\'s right to read is judged on the row the read uses: a reload that widens the consumer mid-request hands nothing of the new account', async () => {
    const svc = makeService();
    await svc.add({ name: 'bot', type: 'stream', accounts: ['main'] });
    receive('main');
    receive('other');
    // The first time the consumer is read, the config is reloaded right after: the consumer now
    // also covers "other", which the client may not read.
    const get = svc.store.get.bind(svc.store);
    let reads = 0;
    (svc.store as unknown as { get: typeof get }).get = (name) => {
      const row = get(name);
      if (++reads === 1) {
        svc.store.remove('bot');
        svc.store.add({ name: 'bot', type: 'stream', accounts: ['main', 'other'] });
      }
      return row;
    };
    const next = consumerRoutes(svc as unknown as ConsumerService).find((r) => r.path === '/v1/inbox/next')!;
    const caller: Caller = { role: 'client', name: 'agent', tokenSha256: '0'.repeat(64), accounts: new Set(['main']), may: new Set(['read']) };
    const req = { method: 'GET', url: new URL('http://daemon/v1/inbox/next?consumer=bot'), params: {}, caller } as unknown as ApiRequest;
    // The read ran under the check of the consumer as it was, and saw it change: nothing handed out.
    await expect(Promise.resolve(next.handler(req))).rejects.toMatchObject({ status: 409 });
    // Read again now, with the widened consumer: refused.
    await expect(Promise.resolve(next.handler(req))).rejects.toMatchObject({ status: 403 });
  });

  it('an ack written after the consumer changed under it (a reload, another daemon) moves no cursor: a conflict', async () => {
    const svc = makeService();
    await svc.add({ name: 'bot', type: 'stream', accounts: ['main'] });
    const row = receive('main');
    expect((await svc.next('bot', 10, ANY_READER)).rows).toHaveLength(1);
    // Between the ack's read of the consumer and its write, the consumer is given another account.
    const get = svc.store.get.bind(svc.store);
    (svc.store as unknown as { get: typeof get }).get = (name) => {
      const before = get(name);
      db.prepare(`UPDATE inbox_consumers SET accounts = '["main","other"]' WHERE name = ?`).run(name);
      return before;
    };
    await expect(svc.ack('bot', row.cursor, ANY_READER)).rejects.toThrow(/changed while it was acknowledged/);
    (svc.store as unknown as { get: typeof get }).get = get;
    expect(get('bot')!.cursor).toBe(0);
  });

  it('a consumer replaced in the store alone (by another daemon of a cluster) is noticed too', async () => {
    const svc = makeService();
    await svc.add({ name: 'bot', type: 'stream', accounts: ['main'] });
    receive();
    const list = inboxStore.list.bind(inboxStore);
    let answer!: () => void;
    (inboxStore as unknown as { list: (q: InboxQuery) => Promise<InboxRow[]> }).list = (q) => new Promise((resolve) => (answer = () => resolve(list(q))));
    const reading = svc.next('bot', 10, ANY_READER);
    await until(() => answer !== undefined);
    // This daemon's reconcile does not run: the change is in the shared store only.
    svc.store.remove('bot');
    clock += 1; // another daemon, later
    svc.store.add({ name: 'bot', type: 'stream', accounts: ['main'] });
    answer();
    await expect(reading).rejects.toThrow(/changed while it was read/);
  });
});
