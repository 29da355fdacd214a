// One suite for both auth stores: the SQLite one a single daemon uses and the PostgreSQL one a
// cluster shares (a real server). The same behaviour is asserted of each; the PostgreSQL store is
// also asserted to refuse every write once its lease has moved to another daemon.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FencedError, LeaseStore, type HeldLease } from '../../src/cluster/lease-store.js';
import { closeStateDb, openStateDb } from '../../src/store/db.js';
import { SqliteAuthStore } from '../../src/wa/auth-store.js';
import { PgAuthStore } from '../../src/store/pg-auth-store.js';
import { BufferJSON, type AuthenticationState } from '@whiskeysockets/baileys';
import pg from 'pg';
import { migratedPostgres } from '../helpers/postgres.js';
import { makeTmpDir } from '../helpers/tmp.js';

/** What both stores offer, awaited (the SQLite store answers at once). */
interface Opened {
  isRegistered(): boolean;
  createdAt(): number | null;
  state(): AuthenticationState;
  saveCreds(): void | Promise<void>;
  archive(reason: string): boolean | Promise<boolean>;
}

interface Backend {
  open(account: string): Promise<Opened>;
  mappedUser(account: string | undefined, key: { phone: string } | { lid: string }): Promise<string | null>;
  archived(): Promise<Array<{ account: string; reason: string; creds: string }>>;
}

const db = migratedPostgres({ beforeAll, afterAll }, 4);
const leases = new Map<string, HeldLease>();
const cleanups: Array<() => void> = [];

afterEach(async () => {
  cleanups.splice(0).reverse().forEach((c) => c());
  leases.clear();
  await db.pool.query('TRUNCATE wa_creds, wa_keys, wa_creds_archive, wa_leases');
});

const sqlite = (): Backend => {
  const t = makeTmpDir();
  const db = openStateDb(t.dir);
  cleanups.push(t.cleanup, () => closeStateDb(db));
  return {
    open: async (account) => new SqliteAuthStore(db, account),
    mappedUser: async (account, key) => SqliteAuthStore.mappedUser(db, account, key),
    archived: async () => db.prepare('SELECT account, reason, creds FROM wa_creds_archive').all() as Array<{ account: string; reason: string; creds: string }>,
  };
};

const postgres = (): Backend => ({
  open: async (account) => {
    let lease = leases.get(account);
    if (!lease) {
      const store = new LeaseStore(db.pool);
      await store.register([account]);
      [lease] = await db.pool.query<{ epoch: string }>("UPDATE wa_leases SET owner = 'me', epoch = epoch + 1, expires_at = now() + interval '1 hour' WHERE account = $1 RETURNING epoch", [account]).then((r) => r.rows.map((x) => ({ account, epoch: Number(x.epoch) })));
      leases.set(account, lease!);
    }
    return PgAuthStore.open(db.pool, { owner: 'me', lease: lease! });
  },
  mappedUser: (account, key) => PgAuthStore.mappedUser(db.pool, account, key),
  archived: async () => (await db.pool.query('SELECT account, reason, creds FROM wa_creds_archive')).rows,
});

describe.each([
  ['SQLite', sqlite],
  ['PostgreSQL', postgres],
])('auth store on %s', (_name, backend) => {
  it('starts with fresh, unregistered creds and round-trips them with their Buffers; the first save time is kept', async () => {
    const b = backend();
    const store = await b.open('main');
    expect(store.isRegistered()).toBe(false);
    expect(store.createdAt()).toBeNull();
    const state = store.state();
    state.creds.me = { id: '15550001111:1@s.whatsapp.net', name: 'Test' };
    await store.saveCreds();
    const firstSaved = store.createdAt() ?? (await b.open('main')).createdAt();
    expect(firstSaved).toEqual(expect.any(Number));

    const again = await b.open('main');
    expect(again.isRegistered()).toBe(true);
    const creds = again.state().creds;
    expect(creds.me?.id).toBe('15550001111:1@s.whatsapp.net');
    expect(Buffer.from(creds.noiseKey.private).equals(Buffer.from(state.creds.noiseKey.private))).toBe(true);
    expect((await b.open('other')).isRegistered()).toBe(false);
    creds.me = { id: '15550001111:2@s.whatsapp.net' };
    await again.saveCreds();
    expect((await b.open('main')).createdAt()).toBe(firstSaved);
    expect((await b.open('main')).state().creds.me?.id).toBe('15550001111:2@s.whatsapp.net');
  });

  it('stores, reads and deletes Signal keys per account and type, many in one set', async () => {
    const b = backend();
    const a = (await b.open('a')).state();
    const other = (await b.open('b')).state();
    const many = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [String(i + 1), { public: Buffer.from([i & 255]), private: Buffer.from([3, 4]) }]));
    await a.keys.set({ 'pre-key': many, session: { x: Buffer.from('s') } });
    const got = await a.keys.get('pre-key', ['1', '300', '301']);
    expect(Object.keys(got).sort()).toEqual(['1', '300']);
    expect(Buffer.from(got['300']!.public)).toEqual(Buffer.from([299 & 255]));
    expect(await other.keys.get('pre-key', ['1'])).toEqual({});
    await a.keys.set({ 'pre-key': { '1': null } });
    expect(await a.keys.get('pre-key', ['1'])).toEqual({});
    expect(Object.keys(await a.keys.get('pre-key', ['2']))).toEqual(['2']);
    expect(Buffer.from((await a.keys.get('session', ['x']))['x']!).toString()).toBe('s');
    await a.keys.clear?.();
    expect(await a.keys.get('session', ['x'])).toEqual({});
  });

  it('revives app-state sync keys as protobuf objects', async () => {
    const keys = (await backend().open('a')).state().keys;
    await keys.set({ 'app-state-sync-key': { k1: { keyData: Buffer.from([9, 9]), timestamp: 5 } } });
    const got = (await keys.get('app-state-sync-key', ['k1']))['k1']!;
    expect(got.constructor.name).toBe('AppStateSyncKeyData');
    expect(Buffer.from(got.keyData!)).toEqual(Buffer.from([9, 9]));
  });

  it('archives creds for review and drops keys on logout, so the next pairing starts fresh', async () => {
    const b = backend();
    const store = await b.open('main');
    const state = store.state();
    state.creds.me = { id: '1:1@s.whatsapp.net' };
    await store.saveCreds();
    await state.keys.set({ session: { x: Buffer.from('s') } });
    expect(await store.archive('401 loggedOut')).toBe(true);
    expect(store.isRegistered()).toBe(false);
    expect((await b.open('main')).isRegistered()).toBe(false);
    expect(await store.state().keys.get('session', ['x'])).toEqual({});
    const archived = await b.archived();
    expect(archived).toHaveLength(1);
    expect(archived[0]).toMatchObject({ account: 'main', reason: '401 loggedOut' });
    expect(JSON.parse(archived[0]!.creds).me.id).toBe('1:1@s.whatsapp.net');
    expect(await store.archive('again')).toBe(false);
  });

  it('answers LID <-> phone mappings Baileys stored, per account or from any account', async () => {
    const b = backend();
    await (await b.open('a')).state().keys.set({ 'lid-mapping': { '15550002222': '123456789012345', '123456789012345_reverse': '15550002222' } } as never);
    expect(await b.mappedUser('a', { phone: '15550002222' })).toBe('123456789012345');
    expect(await b.mappedUser('a', { lid: '123456789012345' })).toBe('15550002222');
    expect(await b.mappedUser(undefined, { lid: '123456789012345' })).toBe('15550002222');
    expect(await b.mappedUser('b', { phone: '15550002222' })).toBeNull();
    expect(await b.mappedUser(undefined, { phone: '15550009999' })).toBeNull();
  });
});

describe('auth store on PostgreSQL, fenced', () => {
  it('once the lease has moved to another daemon, no write of the old holder lands: keys, creds, clear, archive', async () => {
    const b = postgres();
    const store = await b.open('main');
    const state = store.state();
    state.creds.me = { id: '1:1@s.whatsapp.net' };
    await store.saveCreds();
    await state.keys.set({ session: { x: Buffer.from('before') } });
    // Another daemon takes the account (its lease expired on the database's clock).
    await db.pool.query("UPDATE wa_leases SET expires_at = now() - interval '1 second' WHERE account = 'main'");
    expect(await new LeaseStore(db.pool).acquire('other', 1, 60_000, ['main'])).toEqual([{ account: 'main', epoch: 2 }]);
    state.creds.me = { id: '1:9@s.whatsapp.net' };
    await expect(store.saveCreds()).rejects.toBeInstanceOf(FencedError);
    await expect(state.keys.set({ session: { x: Buffer.from('after'), y: Buffer.from('new') } })).rejects.toBeInstanceOf(FencedError);
    await expect(state.keys.clear!()).rejects.toBeInstanceOf(FencedError);
    await expect(store.archive('401')).rejects.toBeInstanceOf(FencedError);
    const rows = await db.pool.query("SELECT id, value FROM wa_keys WHERE account = 'main' ORDER BY id");
    expect(rows.rows.map((r) => [r.id, Buffer.from(JSON.parse(r.value, BufferJSON.reviver) as Uint8Array).toString()])).toEqual([['x', 'before']]);
    expect((await db.pool.query("SELECT creds FROM wa_creds WHERE account = 'main'")).rows.map((r) => JSON.parse(r.creds).me.id)).toEqual(['1:1@s.whatsapp.net']);
    expect(await b.archived()).toEqual([]);
  });

  it('saves go in call order: a later creds save never commits before an earlier one, even when it gets a connection first', async () => {
    await db.pool.query("INSERT INTO wa_leases (account, owner, epoch, expires_at) VALUES ('c', 'me', 1, now() + interval '1 hour')");
    for (let round = 0; round < 5; round++) {
      const small = new pg.Pool({ connectionString: db.url, max: 2 });
      small.on('error', () => undefined);
      try {
        const store = await PgAuthStore.open(small, { owner: 'me', lease: { account: 'c', epoch: 1 } });
        const creds = store.state().creds;
        const busy = await small.connect(); // another write holds one client
        creds.nextPreKeyId = 100 * round + 1;
        const first = store.saveCreds(); // would get a new connection (still connecting)
        creds.nextPreKeyId = 100 * round + 2;
        const second = store.saveCreds(); // would wait for a client, and get the busy one at once
        busy.release();
        await Promise.all([first, second]);
        const saved = JSON.parse((await db.pool.query("SELECT creds FROM wa_creds WHERE account = 'c'")).rows[0].creds).nextPreKeyId;
        expect(saved).toBe(100 * round + 2);
      } finally {
        await small.end();
      }
    }
  });

  it('says registered only for creds it committed, not for what Baileys changed in memory since', async () => {
    const b = postgres();
    const store = await b.open('main');
    store.state().creds.me = { id: '1:1@s.whatsapp.net' };
    expect(store.isRegistered()).toBe(false);
    await store.saveCreds();
    expect(store.isRegistered()).toBe(true);
  });
});
