// What the inbox's callers need of a store, whichever holds it: SQLite answers at once (store.ts),
// PostgreSQL with a promise (pg-store.ts). Callers await every answer, so one inbox serves both.
// Storing a received message is owner-only: a clustered store checks the account's lease there.
import type { Awaitable } from '../outbox/backend.js';
import type { InboundMediaRef, InboundMessage } from '../wa/types.js';
import type { InboxCounts, InboxQuery, InboxRow, InboxStatus, StoreResult } from './store.js';

export interface InboxBackend {
  /** Owner only: stores a received message (one commit); the same message again is the same row. */
  store(account: string, m: InboundMessage, status: Exclude<InboxStatus, 'undecryptable'>): Awaitable<StoreResult>;
  list(q: InboxQuery): Awaitable<InboxRow[]>;
  unread(account: string, chats: string | readonly string[], upTo?: number): Awaitable<InboxRow[]>;
  markRead(cursors: readonly number[], at?: number): Awaitable<void>;
  byCursor(cursor: number): Awaitable<InboxRow | null>;
  byMessageId(id: string, q: { accounts?: readonly string[]; chats?: readonly string[]; statuses: readonly InboxStatus[] }): Awaitable<InboxRow[]>;
  mediaRef(cursor: number): Awaitable<InboundMediaRef | null>;
  updateMediaRef(cursor: number, ref: InboundMediaRef): Awaitable<void>;
  lastCursor(): Awaitable<number>;
  pruneAcknowledged(cutoff: number): Awaitable<number>;
  pruneAll(cutoff: number): Awaitable<number>;
  countsByAccount(): Awaitable<InboxCounts>;
  /** The counts without a copy, where the store keeps them in memory (status of thousands of accounts). */
  countsView?(): ReadonlyMap<string, Readonly<Partial<Record<InboxStatus, number>>>>;
}
