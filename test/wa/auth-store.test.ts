import { afterEach, describe, expect, it } from 'vitest';
import { closeStateDb, openStateDb, type StateDb } from '../../src/store/db.js';
import { LID_MAPPING_SQL, SqliteAuthStore } from '../../src/wa/auth-store.js';
import { makeTmpDir } from '../helpers/tmp.js';

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).reverse().forEach((c) => c()));
function db(): { db: StateDb; dir: string } {
  const t = makeTmpDir();
  cleanups.push(t.cleanup);
  const d = openStateDb(t.dir);
  cleanups.push(() => closeStateDb(d));
  return { db: d, dir: t.dir };
}

describe('SqliteAuthStore', () => {
  it('answers LID <-> phone mappings Baileys stored, per account or from any account', async () => {
    const { db: d } = db();
    // the keys Baileys' LID mapping store writes: <phone> -> lid, <lid>_reverse -> phone
    await new SqliteAuthStore(d, 'a').state().keys.set({ 'lid-mapping': { '15550002222': '123456789012345', '123456789012345_reverse': '15550002222' } } as never);
    expect(SqliteAuthStore.mappedUser(d, 'a', { phone: '15550002222' })).toBe('123456789012345');
    expect(SqliteAuthStore.mappedUser(d, 'a', { lid: '123456789012345' })).toBe('15550002222');
    expect(SqliteAuthStore.mappedUser(d, undefined, { lid: '123456789012345' })).toBe('15550002222');
    expect(SqliteAuthStore.mappedUser(d, 'b', { phone: '15550002222' })).toBeNull(); // b never learned it
    expect(SqliteAuthStore.mappedUser(d, undefined, { phone: '15550009999' })).toBeNull();
  });

  it('finds a mapping through an index, with or without the account, never by scanning every key', () => {
    const { db: d } = db();
    for (const sql of Object.values(LID_MAPPING_SQL)) {
      const params = sql.startsWith('SELECT value FROM wa_keys WHERE account') ? ['a', 'x'] : ['x'];
      const plan = (d.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params).map((r) => (r as { detail: string }).detail)).join('; ');
      expect(plan).toMatch(/^SEARCH wa_keys USING (PRIMARY KEY|INDEX wa_keys_lid_mapping) \(/);
    }
  });

  it('starts with fresh, unregistered creds and round-trips them with their Buffers', () => {
    const { db: d } = db();
    const store = new SqliteAuthStore(d, 'main');
    expect(store.isRegistered()).toBe(false);
    const state = store.state();
    expect(Buffer.isBuffer(state.creds.noiseKey.public) || state.creds.noiseKey.public instanceof Uint8Array).toBe(true);
    state.creds.me = { id: '15550001111:1@s.whatsapp.net', name: 'Test' };
    store.saveCreds();

    const again = new SqliteAuthStore(d, 'main');
    expect(again.isRegistered()).toBe(true);
    const creds = again.state().creds;
    expect(creds.me?.id).toBe('15550001111:1@s.whatsapp.net');
    expect(Buffer.from(creds.noiseKey.private).equals(Buffer.from(state.creds.noiseKey.private))).toBe(true);
    expect(new SqliteAuthStore(d, 'other').isRegistered()).toBe(false);
  });

  it('stores, reads and deletes Signal keys per account and type', async () => {
    const { db: d } = db();
    const a = new SqliteAuthStore(d, 'a').state();
    const b = new SqliteAuthStore(d, 'b').state();
    await a.keys.set({ 'pre-key': { '1': { public: Buffer.from([1, 2]), private: Buffer.from([3, 4]) } }, session: { x: Buffer.from('s') } });
    const got = await a.keys.get('pre-key', ['1', '2']);
    expect(Object.keys(got)).toEqual(['1']);
    expect(Buffer.from(got['1']!.public)).toEqual(Buffer.from([1, 2]));
    expect(await b.keys.get('pre-key', ['1'])).toEqual({});
    await a.keys.set({ 'pre-key': { '1': null } });
    expect(await a.keys.get('pre-key', ['1'])).toEqual({});
    expect(Buffer.from((await a.keys.get('session', ['x']))['x']!).toString()).toBe('s');
  });

  it('revives app-state sync keys as protobuf objects', async () => {
    const { db: d } = db();
    const keys = new SqliteAuthStore(d, 'a').state().keys;
    await keys.set({ 'app-state-sync-key': { k1: { keyData: Buffer.from([9, 9]), timestamp: 5 } } });
    const got = (await keys.get('app-state-sync-key', ['k1']))['k1']!;
    expect(got.constructor.name).toBe('AppStateSyncKeyData');
    expect(Buffer.from(got.keyData!)).toEqual(Buffer.from([9, 9]));
  });

  it('archives creds for review and drops keys on logout, so the next pairing starts fresh', async () => {
    const { db: d } = db();
    const store = new SqliteAuthStore(d, 'main');
    const state = store.state();
    state.creds.me = { id: '1:1@s.whatsapp.net' };
    store.saveCreds();
    await state.keys.set({ session: { x: Buffer.from('s') } });

    expect(store.archive('401 loggedOut')).toBe(true);
    expect(store.isRegistered()).toBe(false);
    expect(await store.state().keys.get('session', ['x'])).toEqual({});
    const archived = d.prepare('SELECT account, reason, creds FROM wa_creds_archive').all() as Array<{ account: string; reason: string; creds: string }>;
    expect(archived).toHaveLength(1);
    expect(archived[0]).toMatchObject({ account: 'main', reason: '401 loggedOut' });
    expect(JSON.parse(archived[0]!.creds).me.id).toBe('1:1@s.whatsapp.net');
    expect(store.archive('again')).toBe(false);
  });
});
