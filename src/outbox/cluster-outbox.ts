// The outbox as one daemon of a cluster sees it (docs/cluster.md): the shared PostgreSQL rows, with
// every owner-only move made under the fence of the lease this daemon holds for the row's account.
// An account this daemon does not own claims nothing and releases nothing; a move of a row in
// flight made after the lease was lost is refused by the store (FencedError), so a daemon that has
// not yet noticed its loss cannot disturb the new owner's sends.
import type { Fence } from '../cluster/lease-store.js';
import type { InsertOutcome, OutboxBackend } from './backend.js';
import type { PgOutboxStore } from './pg-store.js';
import type { AuditEntry, CallerRole, NewRow, OutboxRow, OutboxState, TransitionPatch } from './store.js';

/** States a server ack or receipt moves a row to. */
const SETTLED: readonly OutboxState[] = ['sent', 'delivered', 'read'];

export class ClusterOutbox implements OutboxBackend {
  readonly pg: PgOutboxStore;
  readonly #fenceOf: (account: string) => Fence | null;
  readonly #owned: () => readonly string[];
  /** Rows this daemon claimed and has in flight, by id: their account (whose fence guards their moves). */
  readonly #inFlight = new Map<number, string>();

  constructor(pg: PgOutboxStore, fences: { fenceOf: (account: string) => Fence | null; owned: () => readonly string[] }) {
    this.pg = pg;
    this.#fenceOf = fences.fenceOf;
    this.#owned = fences.owned;
  }

  /** Stores the rows; the owners of their accounts are woken (NOTIFY) to drain them. */
  async insertMany(items: Array<{ row: NewRow; audit: Omit<AuditEntry, 'outboxId'> }>, now?: number): Promise<InsertOutcome[]> {
    const out = await this.pg.insertMany(items, now);
    this.#wake(out.flatMap((r) => ('row' in r && r.created && r.row.state === 'queued' ? [r.row.account] : [])));
    return out;
  }

  /** A wake-up is a hint (the sweep finds every row within seconds anyway): a failed NOTIFY is not the caller's error. */
  #wake(accounts: string[]): void {
    if (accounts.length) this.pg.notifyQueued(accounts).catch(() => undefined);
  }
  get(id: number): Promise<OutboxRow | null> {
    return this.pg.get(id);
  }
  getByMessageId(messageId: string): Promise<OutboxRow | null> {
    return this.pg.getByMessageId(messageId);
  }
  findSent(account: string, chats: readonly string[], messageId: string): Promise<OutboxRow | null> {
    return this.pg.findSent(account, chats, messageId);
  }
  sentMessage(account: string, messageId: string) {
    return this.pg.sentMessage(account, messageId);
  }
  list(filter?: { account?: string; accounts?: readonly string[]; state?: OutboxState; limit?: number; beforeId?: number }): Promise<OutboxRow[]> {
    return this.pg.list(filter);
  }
  audit(filter?: { account?: string; accounts?: readonly string[]; client?: string; role?: CallerRole; limit?: number }): Promise<AuditEntry[]> {
    return this.pg.audit(filter);
  }
  stateAge(account: string, state: OutboxState) {
    return this.pg.stateAge(account, state);
  }
  countsByAccount(states?: readonly OutboxState[]) {
    return this.pg.countsByAccount(states);
  }
  countsByState(account?: string) {
    return this.pg.countsByState(account);
  }
  referencedMedia(): Promise<Set<string>> {
    return this.pg.referencedMedia();
  }
  /** Only the accounts this daemon owns: the others' drains run elsewhere. */
  async accountsWithRowsToSend(): Promise<string[]> {
    const mine = new Set(this.#owned());
    return (await this.pg.accountsWithRowsToSend()).filter((a) => mine.has(a));
  }
  hasWrittenTo(account: string, recipient: string): Promise<boolean> {
    return this.pg.hasWrittenTo(account, recipient);
  }
  nextDueAt(account: string): Promise<number | null> {
    return this.pg.nextDueAt(account);
  }

  async claimNext(account: string, now: number, leaseMs: number): Promise<OutboxRow | null> {
    const fence = this.#fenceOf(account);
    if (!fence) return null;
    const row = await this.pg.claimNext(fence, now, leaseMs);
    if (row) this.#inFlight.set(row.id, account);
    return row;
  }

  async noteWireSendOf(id: number, wire: Uint8Array, leaseUntil: number, now?: number): Promise<boolean> {
    const fence = this.#fenceFor(id);
    return fence ? this.pg.noteWireSendOf(fence, id, wire, leaseUntil, now) : false;
  }

  async noteWireSend(id: number, now?: number): Promise<void> {
    const fence = this.#fenceFor(id);
    if (fence) await this.pg.noteWireSend(fence, id, now);
  }

  async releaseSending(account: string | null, now: number, onlyExpired?: boolean): Promise<OutboxRow[]> {
    const accounts = account === null ? this.#owned() : [account];
    const out: OutboxRow[] = [];
    for (const a of accounts) {
      const fence = this.#fenceOf(a);
      if (!fence) continue;
      for (const r of await this.pg.releaseSending(fence, now, onlyExpired)) {
        this.#inFlight.delete(r.id);
        out.push(r);
      }
    }
    return out;
  }

  async deferUnknown(account: string, until: number, now?: number): Promise<OutboxRow[]> {
    const fence = this.#fenceOf(account);
    return fence ? this.pg.deferUnknown(fence, until, now) : [];
  }

  /**
   * A move out of `sending` is the owner's: made under its fence (refused once the lease is lost).
   * Not a settling one (sent, delivered, read): that is the server's word on the row, true whoever
   * holds the lease now, and dropping it would have the next owner send the row again.
   */
  async transition(id: number, from: readonly OutboxState[], to: OutboxState, patch?: TransitionPatch, now?: number): Promise<OutboxRow | null> {
    const fence = from.includes('sending') && !SETTLED.includes(to) ? this.#fenceFor(id) : undefined;
    if (fence === null) return null;
    const row = await this.pg.transition(id, from, to, patch, now, fence);
    if (row && row.state !== 'sending') this.#inFlight.delete(id);
    if (row?.state === 'queued' && fence === undefined) this.#wake([row.account]); // an operator's retry, through any daemon
    return row;
  }

  async transitionWithAudit(id: number, from: readonly OutboxState[], to: OutboxState, patch: TransitionPatch | undefined, audit: Omit<AuditEntry, 'outboxId'>, now?: number): Promise<OutboxRow | null> {
    const fence = from.includes('sending') ? this.#fenceFor(id) : undefined;
    if (fence === null) return null;
    const row = await this.pg.transitionWithAudit(id, from, to, patch, audit, now, fence);
    if (row && row.state !== 'sending') this.#inFlight.delete(id);
    if (row?.state === 'queued' && fence === undefined) this.#wake([row.account]); // an operator's approval, through any daemon
    return row;
  }

  recordDecision(e: Omit<AuditEntry, 'outboxId'>): Promise<void> {
    return this.pg.recordDecision(e);
  }
  expireDue(now: number): Promise<OutboxRow[]> {
    return this.pg.expireDue(now);
  }
  prune(before: number, states?: readonly OutboxState[]): Promise<number> {
    return this.pg.prune(before, states);
  }

  /**
   * The fence for a row (kept until the row leaves `sending` through this daemon; one row per lost
   * lease at most stays behind, as a drain sends one row at a time): undefined when this daemon did not claim it (a move by state alone, e.g.
   * an ack settling a row another daemon sent), null when it did but no longer holds the lease.
   */
  #fenceFor(id: number): Fence | null | undefined {
    const account = this.#inFlight.get(id);
    if (account === undefined) return undefined;
    return this.#fenceOf(account);
  }

}
