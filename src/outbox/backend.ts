// What the send gate, the control routes and the alert monitor need of an outbox, whichever store
// holds it: SQLite answers at once (store.ts), PostgreSQL with a promise (cluster-outbox.ts). The
// callers await every answer, so one gate serves both. Owner-only moves (claiming, marking a wire
// send, releasing in-flight rows) name the account; a clustered store checks its lease there.
import type { OutboundContent } from './content.js';
import type { AuditEntry, CallerRole, NewRow, OutboxRow, OutboxState, TransitionPatch } from './store.js';

export type Awaitable<T> = T | Promise<T>;

/** The outcome of one insert of a batch. */
export type InsertOutcome = { row: OutboxRow; created: boolean } | { error: Error };

export interface OutboxBackend {
  insertMany(items: Array<{ row: NewRow; audit: Omit<AuditEntry, 'outboxId'> }>, now?: number): Awaitable<InsertOutcome[]>;
  get(id: number): Awaitable<OutboxRow | null>;
  getByMessageId(messageId: string): Awaitable<OutboxRow | null>;
  findSent(account: string, chats: readonly string[], messageId: string): Awaitable<OutboxRow | null>;
  sentMessage(account: string, messageId: string): Awaitable<{ text: string; content?: OutboundContent; wire: Uint8Array | null } | null>;
  list(filter?: { account?: string; accounts?: readonly string[]; state?: OutboxState; limit?: number; beforeId?: number }): Awaitable<OutboxRow[]>;
  audit(filter?: { account?: string; accounts?: readonly string[]; client?: string; role?: CallerRole; limit?: number }): Awaitable<AuditEntry[]>;
  stateAge(account: string, state: OutboxState): Awaitable<{ count: number; oldestCreatedAt: number | null; oldestUpdatedAt: number | null }>;
  countsByAccount(states?: readonly OutboxState[]): Awaitable<Map<string, Partial<Record<OutboxState, number>>>>;
  countsByState(account?: string): Awaitable<Partial<Record<OutboxState, number>>>;
  referencedMedia(): Awaitable<Set<string>>;
  /** Accounts with rows a drain could claim. */
  accountsWithRowsToSend(): Awaitable<string[]>;
  hasWrittenTo(account: string, recipient: string): Awaitable<boolean>;
  nextDueAt(account: string): Awaitable<number | null>;
  /** Owner only: the next row to send, claimed until now + leaseMs. */
  claimNext(account: string, now: number, leaseMs: number): Awaitable<OutboxRow | null>;
  /** Owner only (the row's account): one more hand-off to the socket with the message as built; false when no longer `sending`. */
  noteWireSendOf(id: number, wire: Uint8Array, leaseUntil: number, now?: number): Awaitable<boolean>;
  /** Owner only: one more hand-off to the socket. */
  noteWireSend(id: number, now?: number): Awaitable<void>;
  /** Owner only: in-flight rows put back (null: every account this daemon owns). */
  releaseSending(account: string | null, now: number, onlyExpired?: boolean): Awaitable<OutboxRow[]>;
  /** Owner only: the account's unknown rows get a settle window. */
  deferUnknown(account: string, until: number, now?: number): Awaitable<OutboxRow[]>;
  transition(id: number, from: readonly OutboxState[], to: OutboxState, patch?: TransitionPatch, now?: number): Awaitable<OutboxRow | null>;
  transitionWithAudit(id: number, from: readonly OutboxState[], to: OutboxState, patch: TransitionPatch | undefined, audit: Omit<AuditEntry, 'outboxId'>, now?: number): Awaitable<OutboxRow | null>;
  recordDecision(e: Omit<AuditEntry, 'outboxId'>): Awaitable<void>;
  expireDue(now: number): Awaitable<OutboxRow[]>;
  prune(before: number, states?: readonly OutboxState[]): Awaitable<number>;
}
