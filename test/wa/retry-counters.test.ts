import { afterEach, describe, expect, it } from 'vitest';
import { closeStateDb, openStateDb } from '../../src/store/db.js';
import { RETRY_COUNTER_TTL_MS, retryCounterCache } from '../../src/wa/retry-counters.js';
import { tmpDirs } from '../helpers/tmp.js';

const dir = tmpDirs(afterEach, 'wa-retry-');

describe('retry counters', () => {
  it('survive reopening the database (a restart), per account, and are forgotten after a day', async () => {
    const d = dir();
    let now = 1_700_000_000_000;
    let db = openStateDb(d);
    const a = retryCounterCache(db, 'a', () => now);
    await a.set('MSG1:15550001111@s.whatsapp.net', 3);
    await retryCounterCache(db, 'b', () => now).set('MSG1:15550001111@s.whatsapp.net', 1);
    closeStateDb(db);
    db = openStateDb(d);
    try {
      expect(await retryCounterCache(db, 'a', () => now).get('MSG1:15550001111@s.whatsapp.net')).toBe(3);
      expect(await retryCounterCache(db, 'b', () => now).get('MSG1:15550001111@s.whatsapp.net')).toBe(1);
      expect(await retryCounterCache(db, 'a', () => now).get('other')).toBeUndefined();
      now += RETRY_COUNTER_TTL_MS + 1;
      expect(await retryCounterCache(db, 'a', () => now).get('MSG1:15550001111@s.whatsapp.net')).toBeUndefined();
      const c = retryCounterCache(db, 'c', () => now);
      await c.set('x', 1);
      await c.del('x');
      expect(await c.get('x')).toBeUndefined();
      await c.set('y', 2);
      await c.flushAll();
      expect(await c.get('y')).toBeUndefined();
    } finally {
      closeStateDb(db);
    }
  });
});
