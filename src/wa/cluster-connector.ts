// Baileys connections of a daemon in a cluster (docs/cluster.md): the auth state is in PostgreSQL,
// opened with the fence of the lease this daemon holds when the lease is granted, and dropped when
// the lease goes. Only an account this daemon owns can connect. What the runner asks synchronously
// (is it paired, since when) answers from the creds read when the store opened.
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { Fence } from '../cluster/lease-store.js';
import type { StateDb } from '../store/db.js';
import { PgAuthStore } from '../store/pg-auth-store.js';
import { BaileysConnection, downloadMedia } from './baileys-connection.js';
import { retryCounterCache } from './retry-counters.js';
import type { ConnectOptions, InboundMediaRef, SentContent, WaConnection, WaConnector } from './types.js';

export class ClusterConnector implements WaConnector {
  readonly #pool: Pool;
  readonly #db: StateDb;
  readonly #log: Logger;
  readonly #version: [number, number, number] | undefined;
  readonly #sentContent: (account: string, messageId: string) => Promise<SentContent | null>;
  readonly #stores = new Map<string, PgAuthStore>();

  constructor(opts: {
    pool: Pool;
    /** The local state database (retry counters stay with the host). */
    db: StateDb;
    log: Logger;
    version?: [number, number, number];
    sentContent: (account: string, messageId: string) => Promise<SentContent | null>;
  }) {
    this.#pool = opts.pool;
    this.#db = opts.db;
    this.#log = opts.log;
    this.#version = opts.version;
    this.#sentContent = opts.sentContent;
  }

  /**
   * Opens the account's auth state under its lease (reads the creds); before connect. Kept only
   * while `stillCurrent()` says the lease is still this daemon's: a store opened for a lease lost
   * meanwhile (or replaced by a newer one) would only have its writes refused.
   */
  async open(fence: Fence, stillCurrent: () => boolean): Promise<void> {
    const store = await PgAuthStore.open(this.#pool, fence);
    if (stillCurrent()) this.#stores.set(fence.lease.account, store);
  }

  /** Forgets the account's auth state (its lease is gone; writes through it would be refused anyway). */
  drop(account: string): void {
    this.#stores.delete(account);
  }

  /** True while the account's auth state is open here. */
  isOpen(account: string): boolean {
    return this.#stores.has(account);
  }

  connect(opts: ConnectOptions): WaConnection {
    const store = this.#stores.get(opts.account);
    if (!store) throw new Error(`account ${opts.account} is not owned by this daemon (no lease)`);
    return new BaileysConnection(store, opts, this.#log.child({ account: opts.account }), this.#version, {
      retryCounters: retryCounterCache(this.#db, opts.account),
      sentContent: (id) => this.#sentContent(opts.account, id),
    });
  }

  isRegistered(account: string): boolean {
    return this.#stores.get(account)?.isRegistered() ?? false;
  }

  authCreatedAt(account: string): number | null {
    return this.#stores.get(account)?.createdAt() ?? null;
  }

  // The stored mappings are not read synchronously from PostgreSQL: the gate asks the open
  // connection, then storedIdentities below.
  phoneJidForLid(): string | null {
    return null;
  }

  lidJidForPhone(): string | null {
    return null;
  }

  /** The account's learnt LID and number mappings in PostgreSQL, as a resolver the send gate asks (any daemon). */
  storedIdentities(account: string): { resolveIdentity(jid: string): Promise<string | null> } {
    return {
      resolveIdentity: async (jid) => {
        const [user, server] = jid.split('@') as [string, string | undefined];
        if (server === 'lid') {
          const phone = await PgAuthStore.mappedUser(this.#pool, account, { lid: user });
          return phone ? `${phone}@s.whatsapp.net` : null;
        }
        const lid = await PgAuthStore.mappedUser(this.#pool, account, { phone: user });
        return lid ? `${lid}@lid` : null;
      },
    };
  }

  archiveCreds(account: string, reason: string): boolean {
    const store = this.#stores.get(account);
    if (!store) return false;
    store.archive(reason).catch((err: unknown) => this.#log.error({ err, account }, 'archiving creds failed'));
    return true;
  }

  downloadMedia(ref: InboundMediaRef, opts?: { signal?: AbortSignal }): Promise<AsyncIterable<Uint8Array>> {
    return downloadMedia(ref, opts);
  }
}
