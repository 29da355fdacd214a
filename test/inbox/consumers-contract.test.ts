// One suite for both consumer stores: the SQLite one a single daemon uses and the PostgreSQL one
// daemons share (a real server). Config sync, API consumers, acknowledgements that never move a
// cursor back, retries, dead letters and lag behave the same on each; on PostgreSQL, two daemons
// syncing the config at once and acknowledgements racing through two daemons keep the same rules.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConsumerStore, type ConsumerBackend, type ConsumerSpec } from '../../src/inbox/consumers.js';
import { PgConsumerStore } from '../../src/inbox/pg-consumers.js';
import { closeStateDb, openStateDb } from '../../src/store/db.js';
import { migratedPostgres } from '../helpers/postgres.js';
import { makeTmpDir } from '../helpers/tmp.js';

const NOW = 1_700_000_000_000;

/** Either store, every answer a promise. */
type Consumers = { [K in keyof ConsumerBackend]: (...a: Parameters<ConsumerBackend[K]>) => Promise<Awaited<ReturnType<ConsumerBackend[K]>>> } & {
  /** Puts an inbox row in place (the inbox stores are tested elsewhere). */
  inboxRow(cursor: number, account: string, status: string, receivedAt: number): Promise<void>;
};

const db = migratedPostgres({ beforeAll, afterAll });
const cleanups: Array<() => void> = [];
afterEach(async () => {
  cleanups.splice(0).reverse().forEach((c) => c());
  await db.pool.query('TRUNCATE inbox_consumers, inbox_dead_letters, inbox');
});

const INBOX_ROW = "INSERT INTO inbox (cursor, account, chat, id, sender, chat_type, kind, status, timestamp, received_at) VALUES ($1, $2, 'c', $3, 'c', 'direct', 'text', $4, 1, $5)";

const sqlite = (): Consumers => {
  const t = makeTmpDir('wa-consumers-');
  const sdb = openStateDb(t.dir);
  cleanups.push(t.cleanup, () => closeStateDb(sdb));
  const s = new ConsumerStore(sdb, { now: () => NOW });
  const wrapped = Object.fromEntries(
    ['get', 'list', 'syncConfig', 'add', 'remove', 'ack', 'recordFailure', 'deadLetter', 'deadLetters', 'deadLetterCount', 'lag'].map((m) => [m, async (...a: unknown[]) => (s as unknown as Record<string, (...x: unknown[]) => unknown>)[m]!(...a)]),
  ) as unknown as Omit<Consumers, 'inboxRow'>;
  return {
    ...wrapped,
    inboxRow: async (cursor, account, status, receivedAt) => {
      sdb.prepare(INBOX_ROW.replace(/\$\d/g, '?')).run(cursor, account, `m${cursor}`, status, receivedAt);
    },
  };
};

const postgres = (): Consumers => {
  const s = new PgConsumerStore(db.pool, { now: () => NOW });
  return {
    get: (n) => s.get(n),
    list: () => s.list(),
    syncConfig: (specs) => s.syncConfig(specs),
    add: (spec) => s.add(spec),
    remove: (n) => s.remove(n),
    ack: (n, c) => s.ack(n, c),
    recordFailure: (n, e, t) => s.recordFailure(n, e, t),
    deadLetter: (n, c, r) => s.deadLetter(n, c, r),
    deadLetters: (n) => s.deadLetters(n),
    deadLetterCount: (n) => s.deadLetterCount(n),
    lag: (c) => s.lag(c),
    inboxRow: async (cursor, account, status, receivedAt) => {
      await db.pool.query(INBOX_ROW, [cursor, account, `m${cursor}`, status, receivedAt]);
    },
  };
};

describe.each([
  ['SQLite', sqlite],
  ['PostgreSQL', postgres],
])('consumer store on %s', (_name, backend) => {
  it('keeps the config consumers what the config says: new at cursor 0, changed keep their cursor, unlisted removed; an API consumer of that name is taken over', async () => {
    const c = backend();
    expect(await c.add({ name: 'api-one', type: 'stream' })).toBe(true);
    expect(await c.add({ name: 'api-one', type: 'stream' })).toBe(false);
    expect(await c.syncConfig([{ name: 'bot', type: 'stream', accounts: ['main'] }, { name: 'hook', type: 'webhook', url: 'https://example.test/h', secret: 'x'.repeat(16) }])).toEqual({ added: ['bot', 'hook'], removed: [] });
    await c.ack('bot', 7);
    expect(await c.syncConfig([{ name: 'bot', type: 'stream' }, { name: 'api-one', type: 'stream', accounts: ['second'] }])).toEqual({ added: [], removed: ['hook'] });
    const list = await c.list();
    expect(list.map((x) => [x.name, x.origin, x.cursor, x.accounts ?? null])).toEqual([
      ['api-one', 'config', 0, ['second']],
      ['bot', 'config', 7, null],
    ]);
    expect(await c.get('hook')).toBeNull();
    expect(await c.remove('bot')).toBe(true);
    expect(await c.remove('bot')).toBe(false);
  });

  it('an acknowledgement never moves the cursor back and clears retry state; an unknown consumer is null', async () => {
    const c = backend();
    await c.add({ name: 'bot', type: 'webhook', url: 'https://example.test/h', secret: 'x'.repeat(16) });
    await c.recordFailure('bot', 'HTTP 500', NOW + 5000);
    expect(await c.get('bot')).toMatchObject({ attempts: 1, nextAttemptAt: NOW + 5000, lastError: 'HTTP 500', lastErrorAt: NOW });
    expect(await c.ack('bot', 10)).toBe(10);
    expect(await c.ack('bot', 4)).toBe(10);
    expect(await c.get('bot')).toMatchObject({ cursor: 10, ackedAt: NOW, attempts: 0, nextAttemptAt: null });
    expect(await c.ack('nobody', 3)).toBeNull();
  });

  it('a dead letter is listed and moves the cursor past it; removing the consumer removes its dead letters', async () => {
    const c = backend();
    await c.add({ name: 'hook', type: 'webhook', url: 'https://example.test/h', secret: 'x'.repeat(16) });
    await c.deadLetter('hook', 5, 'HTTP 410');
    await c.deadLetter('hook', 3, 'HTTP 400');
    expect(await c.deadLetters('hook')).toEqual([
      { consumer: 'hook', cursor: 3, reason: 'HTTP 400', at: NOW },
      { consumer: 'hook', cursor: 5, reason: 'HTTP 410', at: NOW },
    ]);
    expect(await c.deadLetterCount('hook')).toBe(2);
    expect((await c.get('hook'))?.cursor).toBe(5);
    await c.remove('hook');
    expect(await c.deadLetterCount('hook')).toBe(0);
  });

  it('lag counts readable rows after the cursor, of the consumer\'s accounts only', async () => {
    const c = backend();
    await c.inboxRow(1, 'main', 'ok', NOW - 3000);
    await c.inboxRow(2, 'main', 'ignored', NOW - 2000);
    await c.inboxRow(3, 'second', 'undecryptable', NOW - 1000);
    await c.inboxRow(4, 'main', 'ok', NOW);
    expect(await c.lag({ cursor: 0, accounts: undefined })).toEqual({ unacknowledged: 3, oldestReceivedAt: NOW - 3000 });
    expect(await c.lag({ cursor: 1, accounts: ['main'] })).toEqual({ unacknowledged: 1, oldestReceivedAt: NOW });
    expect(await c.lag({ cursor: 4, accounts: undefined })).toEqual({ unacknowledged: 0, oldestReceivedAt: null });
  });
});

describe('consumer store on PostgreSQL, shared', () => {
  it('two daemons syncing the config at once add each consumer once; acknowledgements racing through them keep the highest', async () => {
    const a = new PgConsumerStore(db.pool);
    const b = new PgConsumerStore(db.pool);
    // Several rounds: without the lock, two starts interleave (both find a consumer missing, one insert fails) often, not always.
    for (let round = 0; round < 6; round++) {
      const specs: ConsumerSpec[] = [{ name: 'bot', type: 'stream' }, { name: `audit${round}`, type: 'stream' }];
      const [ra, rb] = await Promise.all([a.syncConfig(specs), b.syncConfig(specs)]);
      expect([...ra.added, ...rb.added].sort()).toEqual(round === 0 ? ['audit0', 'bot'] : [`audit${round}`]);
      expect([...ra.removed, ...rb.removed]).toEqual(round === 0 ? [] : [`audit${round - 1}`]);
    }
    const acks = Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).ack('bot', (i * 7919) % 97));
    await Promise.all(acks);
    expect((await a.get('bot'))?.cursor).toBe(Math.max(...Array.from({ length: 40 }, (_, i) => (i * 7919) % 97)));
  });

  it("in a cluster (keepUnlisted) a daemon started with an older config keeps the consumers it does not list, with their cursors", async () => {
    const current = new PgConsumerStore(db.pool, { keepUnlisted: true });
    const older = new PgConsumerStore(db.pool, { keepUnlisted: true });
    await current.syncConfig([{ name: 'bot', type: 'stream' }, { name: 'new-hook', type: 'webhook', url: 'http://127.0.0.1:9/x', secret: 'a-secret-of-sixteen+' }]);
    await current.ack('new-hook', 41);
    expect(await older.syncConfig([{ name: 'bot', type: 'stream' }])).toEqual({ added: [], removed: [] });
    expect((await current.get('new-hook'))?.cursor).toBe(41);
    // Without it (one host), an unlisted config consumer goes.
    expect((await new PgConsumerStore(db.pool).syncConfig([{ name: 'bot', type: 'stream' }])).removed).toEqual(['new-hook']);
  });
});
