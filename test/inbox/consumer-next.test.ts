// Pull reads of a stream consumer (GET /v1/inbox/next): what they hand out is what can be
// acknowledged, never while a stream reader is connected, and never on behalf of a consumer that
// was replaced while the read ran.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventBus } from '../../src/events/bus.js';
import { Inbox } from '../../src/inbox/inbox.js';
import { InboxStore, type InboxQuery, type InboxRow } from '../../src/inbox/store.js';
import { closeStateDb, openStateDb, type StateDb } from '../../src/store/db.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { consumerService, inboundMessage, silentLog, sink, until } from './support.js';

let tmp: { dir: string; cleanup: () => void };
let db: StateDb;
let inboxStore: InboxStore;
let inbox: Inbox<InboxStore>;
let service: ReturnType<typeof consumerService> | undefined;

beforeEach(() => {
  tmp = makeTmpDir('wa-next-');
  db = openStateDb(tmp.dir);
  inboxStore = new InboxStore(db);
  inbox = new Inbox({ store: inboxStore, bus: new EventBus(), log: silentLog });
});
afterEach(async () => {
  await service?.stop();
  service = undefined;
  closeStateDb(db);
  tmp.cleanup();
});

const receive = (account = 'main', over = {}): InboxRow => inbox.receive(account, inboundMessage(over)).row;

describe('a pull read', () => {
  it('hands its accounts\' rows after the committed cursor, a page at a time, and what it handed can be acknowledged', async () => {
    service = consumerService(db, inbox);
    await service.add({ name: 'bot', type: 'stream', accounts: ['main'] });
    const mine = [receive(), receive('other'), receive(), receive()];
    const first = await service.next('bot', 2);
    expect(first.rows.map((r) => r.cursor)).toEqual([mine[0]!.cursor, mine[2]!.cursor]);
    expect(first.committed).toBe(0);
    // Not past what was handed out (the fourth row was not).
    await expect(service.ack('bot', mine[3]!.cursor)).rejects.toThrow(/never given/);
    expect(await service.ack('bot', mine[2]!.cursor)).toBe(mine[2]!.cursor);
    const second = await service.next('bot', 10);
    expect(second).toEqual({ rows: [expect.objectContaining({ cursor: mine[3]!.cursor })], committed: mine[2]!.cursor });
  });

  it('is refused while a stream reader is connected, and allowed once it left', async () => {
    service = consumerService(db, inbox);
    await service.add({ name: 'bot', type: 'stream', accounts: ['main'] });
    receive();
    const reader = sink();
    await service.openStream('bot', () => reader);
    await until(() => reader.rows.length === 1);
    await expect(service.next('bot', 10)).rejects.toThrow(/has a stream reader connected/);
    reader.close();
    expect((await service.next('bot', 10)).rows).toHaveLength(1);
  });

  it('a read that was running while its consumer was removed and added again counts for nothing', async () => {
    service = consumerService(db, inbox);
    await service.add({ name: 'bot', type: 'stream', accounts: ['main'] });
    const rows = [receive(), receive(), receive()];
    // The store answers the read only when told to.
    const list = inboxStore.list.bind(inboxStore);
    let answer!: () => void;
    (inboxStore as unknown as { list: (q: InboxQuery) => Promise<InboxRow[]> }).list = (q) => new Promise((resolve) => (answer = () => resolve(list(q))));
    const reading = service.next('bot', 10);
    await until(() => answer !== undefined);
    await service.remove('bot');
    await service.add({ name: 'bot', type: 'stream', accounts: ['main'] });
    answer();
    await expect(reading).rejects.toThrow(/changed while it was read/);
    // The consumer now is a new one at cursor 0 that was handed nothing.
    await expect(service.ack('bot', rows[2]!.cursor)).rejects.toThrow(/never given/);
  });

  it('a consumer replaced in the store alone (by another daemon of a cluster) is noticed too', async () => {
    let clock = 1_700_000_000_000;
    service = consumerService(db, inbox, { now: () => clock++ });
    await service.add({ name: 'bot', type: 'stream', accounts: ['main'] });
    receive();
    const list = inboxStore.list.bind(inboxStore);
    let answer!: () => void;
    (inboxStore as unknown as { list: (q: InboxQuery) => Promise<InboxRow[]> }).list = (q) => new Promise((resolve) => (answer = () => resolve(list(q))));
    const reading = service.next('bot', 10);
    await until(() => answer !== undefined);
    // This daemon's reconcile does not run: the change is in the shared store only.
    service.store.remove('bot');
    service.store.add({ name: 'bot', type: 'stream', accounts: ['main'] });
    answer();
    await expect(reading).rejects.toThrow(/changed while it was read/);
  });
});
