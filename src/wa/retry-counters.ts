// Baileys' message retry counters (how often a message was asked for again, and re-sent) kept in
// the state database instead of Baileys' in-memory cache, so a restart does not reset them: a
// recipient that can never decrypt gets at most Baileys' maxMsgRetryCount re-sends, not that many
// per daemon run.
import type { CacheStore } from '@whiskeysockets/baileys';
import type { StateDb } from '../store/db.js';
import { writeTx } from '../store/db.js';

/** Counters older than this are forgotten (a retry is asked for within minutes of a send). */
export const RETRY_COUNTER_TTL_MS = 24 * 3_600_000;

/** One account's retry counters, as the `msgRetryCounterCache` Baileys takes. */
export function retryCounterCache(db: StateDb, account: string, now: () => number = Date.now): CacheStore {
  const get = db.prepare<[string, string, number], { value: string }>('SELECT value FROM wa_retry_counters WHERE account = ? AND key = ? AND updated_at > ?');
  const set = db.prepare<[string, string, string, number]>(
    'INSERT INTO wa_retry_counters (account, key, value, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (account, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
  );
  const del = db.prepare<[string, string]>('DELETE FROM wa_retry_counters WHERE account = ? AND key = ?');
  const flush = db.prepare<[string]>('DELETE FROM wa_retry_counters WHERE account = ?');
  const prune = db.prepare<[number]>('DELETE FROM wa_retry_counters WHERE updated_at <= ?');
  writeTx(db, () => prune.run(now() - RETRY_COUNTER_TTL_MS));
  return {
    get: <T>(key: string): T | undefined => {
      const row = get.get(account, key, now() - RETRY_COUNTER_TTL_MS);
      return row ? (JSON.parse(row.value) as T) : undefined;
    },
    set: <T>(key: string, value: T): void => {
      writeTx(db, () => set.run(account, key, JSON.stringify(value), now()));
    },
    del: (key: string): void => {
      writeTx(db, () => del.run(account, key));
    },
    flushAll: (): void => {
      writeTx(db, () => flush.run(account));
    },
  };
}
