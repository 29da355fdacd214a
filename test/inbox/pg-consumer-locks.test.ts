// The consumers' locks of a cluster on a real PostgreSQL server: one daemon at a time holds a
// consumer, a released or lost lock is free for another, and a daemon whose connection is ended
// by the server (a daemon cut off, its idle session ended) is told it lost everything it held.
import { afterEach, afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgConsumerLocks } from '../../src/inbox/pg-consumer-locks.js';
import { migratedPostgres } from '../helpers/postgres.js';

const db = migratedPostgres({ beforeAll, afterAll });
const open: PgConsumerLocks[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((l) => l.close()));
});

function locks(idleLimitMs = 60_000, pingMs = 60_000): PgConsumerLocks {
  const l = new PgConsumerLocks({ url: db.url, pingMs, idleLimitMs });
  open.push(l);
  return l;
}

/** The server backends holding advisory locks now. */
async function holders(): Promise<number[]> {
  return (await db.pool.query<{ pid: number }>("SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory' AND granted")).rows.map((r) => r.pid);
}

describe('consumer locks on PostgreSQL', () => {
  it('one daemon at a time holds a consumer; another consumer is free; a release frees it', async () => {
    const [a, b] = [locks(), locks()];
    expect(await a.tryTake('hook')).toBe(true);
    expect(await b.tryTake('hook')).toBe(false);
    expect(await b.tryTake('other')).toBe(true);
    expect(await a.tryTake('other')).toBe(false);
    await a.release('hook');
    expect(await b.tryTake('hook')).toBe(true);
    expect(await a.tryTake('hook')).toBe(false);
  });

  it('a closed daemon holds nothing', async () => {
    const [a, b] = [locks(), locks()];
    expect(await a.tryTake('hook')).toBe(true);
    await a.close();
    expect(await b.tryTake('hook')).toBe(true);
    await expect(a.tryTake('hook')).rejects.toThrow(/closed/);
  });

  it('a connection the server ends: its daemon is told it lost every lock, another takes them, and it can take them again later', async () => {
    const [a, b] = [locks(), locks()];
    expect(await a.tryTake('hook')).toBe(true);
    const lost = new Promise<void>((resolve) => a.onLost(resolve));
    const [pid] = await holders();
    await db.pool.query('SELECT pg_terminate_backend($1)', [pid]);
    await lost;
    expect(await b.tryTake('hook')).toBe(true);
    await b.release('hook');
    expect(await a.tryTake('hook')).toBe(true); // a new connection
  });

  it('a daemon that stops pinging (cut off) has its session ended by the server within the idle limit, freeing its locks', async () => {
    // Pings far apart: the session sits idle past its limit, as a black-holed daemon's does.
    const a = locks(300, 60_000);
    const b = locks();
    expect(await a.tryTake('hook')).toBe(true);
    const lost = new Promise<void>((resolve) => a.onLost(resolve));
    await lost; // the server ended the idle session
    expect(await b.tryTake('hook')).toBe(true);
  });
});
