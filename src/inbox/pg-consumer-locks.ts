// Which daemon of a cluster serves a consumer (docs/cluster.md): a PostgreSQL session advisory lock
// per consumer, held on one connection of this daemon's own. A daemon that dies (kill -9, a lost
// host) loses its connection and with it every lock, and the others take them on their next try.
//
// A connection that is black-holed rather than closed is invisible to the server; so this
// connection pings every `pingMs`, and asks the server to end it once it has been idle for
// `idleLimitMs` (idle_session_timeout, PostgreSQL 14 and later): a daemon cut off from the store
// stops pinging, and the server frees its locks within that limit. The daemon's side notices a
// ping that gets no answer and drops what it served.
import pg from 'pg';
import type { ConsumerLocks } from './consumer-service.js';

/** The advisory lock key of a consumer (one 32-bit hash space per purpose; a collision only makes two consumers share a daemon). */
function key(name: string): string {
  return `wa-supervisor consumer ${name}`;
}

export class PgConsumerLocks implements ConsumerLocks {
  readonly #url: string;
  readonly #pingMs: number;
  readonly #idleLimitMs: number;
  readonly #lost = new Set<() => void>();
  #client: pg.Client | null = null;
  #connecting: Promise<pg.Client> | null = null;
  #ping: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(opts: { url: string; pingMs: number; idleLimitMs: number }) {
    this.#url = opts.url;
    this.#pingMs = opts.pingMs;
    this.#idleLimitMs = opts.idleLimitMs;
  }

  onLost(fn: () => void): void {
    this.#lost.add(fn);
  }

  async tryTake(name: string): Promise<boolean> {
    const client = await this.#connected();
    const r = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [key(name)]);
    return r.rows[0]!.ok;
  }

  async release(name: string): Promise<void> {
    const client = this.#client;
    if (!client) return; // the connection went, and every lock with it
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [key(name)]);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#drop(false);
    // A black-holed connection never answers the goodbye: not waited for past a second.
    if (client) await Promise.race([client.end().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
  }

  #connected(): Promise<pg.Client> {
    if (this.#closed) return Promise.reject(new Error('consumer locks closed'));
    if (this.#client) return Promise.resolve(this.#client);
    this.#connecting ??= this.#connect().finally(() => (this.#connecting = null));
    return this.#connecting;
  }

  async #connect(): Promise<pg.Client> {
    const timeoutMs = Math.max(1000, this.#pingMs);
    const client = new pg.Client({ connectionString: this.#url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs, keepAlive: true });
    client.on('error', () => this.#lose(client));
    client.on('end', () => this.#lose(client));
    try {
      await client.connect();
      // Older servers know no idle_session_timeout: then the lock of a black-holed daemon waits for TCP.
      await client.query(`SET idle_session_timeout = ${Math.floor(this.#idleLimitMs)}`).catch(() => undefined);
    } catch (err) {
      void client.end().catch(() => undefined);
      throw err;
    }
    if (this.#closed) {
      void client.end().catch(() => undefined);
      throw new Error('consumer locks closed');
    }
    this.#client = client;
    this.#ping = setInterval(() => {
      client.query('SELECT 1').catch(() => this.#lose(client));
    }, this.#pingMs);
    this.#ping.unref();
    return client;
  }

  /** The connection failed: every lock it held is gone; the next take connects again. */
  #lose(client: pg.Client): void {
    if (this.#client !== client) return;
    this.#drop(true);
    void client.end().catch(() => undefined);
  }

  #drop(tell: boolean): void {
    if (this.#ping) clearInterval(this.#ping);
    this.#ping = null;
    const had = this.#client !== null;
    this.#client = null;
    if (tell && had) for (const fn of this.#lost) fn();
  }
}
