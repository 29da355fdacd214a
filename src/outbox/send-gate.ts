// The send gate: the one place outbound messages enter (enqueue, from every entry point) and the
// one place that calls the WhatsApp connection's send. Policy is checked at both ends: when the
// row is stored, and again just before it goes out (the config may have changed meanwhile).
import { KeyedQueue } from '../keyed-queue.js';
import { Semaphore } from '../semaphore.js';
import { HttpError } from '../control/http-error.js';
import type { EventBus } from '../events/bus.js';
import type { Log } from '../log.js';
import { decide, evaluate, type Policy, type PolicyDecision, type SendKind } from '../policy/policy.js';
import { SendNotWrittenError, isNotWritten } from '../wa/send-error.js';
import type { InboundMediaRef, WaSender, WaEvent } from '../wa/types.js';
import { displayText, isPlainText, kindOf, mediaOf, type OutboundContent } from './content.js';
import type { MediaStore } from './media-store.js';
import { newMessageId } from './message-id.js';
import { askIdentities, knownIdentities, type IdentityLookups, type IdentityResolver } from './peer-identity.js';
import { normaliseRecipient } from './recipient.js';
import type { OutboxBackend } from './backend.js';
import { FINAL_STATES, expiryReason, type AuditEntry, type CallerRole, type NewRow, type OutboxRow, type OutboxState } from './store.js';
import { DEFAULT_PACING, TokenBucket, type PacingPolicy } from './token-bucket.js';

/** Longest text accepted, in characters (WhatsApp's own limit is about 65,536). */
export const MAX_TEXT_CHARS = 65_536;
/** A claimed row's lease; also how long a sent row may wait for the server's ack before it is `unknown`. */
export const LEASE_MS = 15_000;
/** How long a media row stays claimed while its file is encrypted and uploaded. */
export const UPLOAD_LEASE_MS = 10 * 60_000;
/**
 * Messages being built and written at once, across all accounts. Building one (Signal
 * encryption for each device, a media upload) is work on the one event loop, cut into slices that
 * take turns (wa/loop-slices.ts). A thousand accounts sending at once would each hold a place in
 * that queue, and every message would wait for all the others: written late, and its server ack
 * read late, past the lease, so it would be sent again. With a bound, the others wait here, before
 * anything is written, and each message goes through in the time a few take.
 */
export const SEND_CONCURRENCY = 32;
/** How often leases, TTLs and due rows are checked even when nothing happens. */
export const SWEEP_INTERVAL_MS = 2000;

/** What the gate needs to know about an account. */
export interface GateAccount {
  /** The open connection, or null. */
  readonly connection: WaSender | null;
  /** The open connection's identity lookup (a LID's number, a number's LID), or null. */
  readonly resolver?: IdentityResolver | null;
  onConnectionEvent(listener: (e: WaEvent) => void): () => void;
}

/** Settings the gate reads for each account (from the config, reloadable). */
export interface GateSettings {
  policy: Policy;
  pacing: (account: string) => PacingPolicy;
  ttlMs: number;
  maxAttempts: number;
  /** Backoff ceiling for send errors: min(maxMs, initialMs × 2^(n−1)). */
  retry: { initialMs: number; maxMs: number };
  /**
   * After a connection opens, how long its unknown rows wait for an ack, receipt or echo of their
   * id before they are re-sent with that id (0: re-sent at once).
   */
  settleMs: number;
}

/** Who asked for an operator action (the control request and its client). */
export interface OperatorRequest {
  client?: string | undefined;
  /** Whether `client` is an authenticated client's name or an operator's own label. */
  role?: CallerRole | undefined;
  requestId?: string | undefined;
}

/** A request to send, from any entry point. */
export interface EnqueueInput {
  account: string;
  to: string;
  /** The text of a text message; ignored when `content` is given. */
  text?: string;
  /** What to send when it is more than a text (composed and checked by compose.ts). */
  content?: OutboundContent;
  kind?: SendKind;
  idempotencyKey?: string | undefined;
  requestId?: string | undefined;
  client?: string | undefined;
  /** Whether `client` is an authenticated client's name or an operator's own label. */
  role?: CallerRole | undefined;
}

/** The outcome of an enqueue: the stored row (new, or the one the idempotency key already named). */
export interface EnqueueResult {
  row: OutboxRow;
  created: boolean;
}

/** The gate. Create one per daemon; attach every account runner. */
export class SendGate {
  readonly store: OutboxBackend;
  readonly #bus: Pick<EventBus, 'publish' | 'subscribe'>;
  readonly #log: Log;
  readonly #accounts: (id: string) => GateAccount | undefined;
  readonly #lookups: IdentityLookups;
  readonly #storedIdentities: ((account: string) => IdentityResolver) | undefined;
  /** Files of media rows (null: media rows fail at send). */
  readonly media: MediaStore | null;
  #settings: GateSettings;
  readonly #drains = new Map<string, AccountDrain>();
  #sweep: NodeJS.Timeout | null = null;
  readonly #unsubscribe: Array<() => void> = [];
  /** Per attached account, the function that stops listening to its connection events. */
  readonly #attached = new Map<string, () => void>();
  /** Per account, the unknown rows inside the settle window of the current connection. */
  readonly #settling = new Map<string, Set<number>>();
  /** Rows moved by an operator request, until they settle: later events name that request too. */
  readonly #causedBy = new Map<number, string>();
  /** Per account, its connection events applied one at a time (see #serially). */
  readonly #serials = new KeyedQueue();
  #sweeping = false;
  #commits = 0;
  #committedRows = 0;
  /** Places for messages being built and written (SEND_CONCURRENCY). */
  readonly building = new Semaphore(SEND_CONCURRENCY);
  readonly #pending: Array<{ row: NewRow; audit: Omit<AuditEntry, 'outboxId'>; resolve: (r: EnqueueResult) => void; reject: (e: Error) => void }> = [];

  constructor(opts: {
    store: OutboxBackend;
    bus: Pick<EventBus, 'publish' | 'subscribe'>;
    log: Log;
    accounts: (id: string) => GateAccount | undefined;
    phoneJidForLid: (account: string, jid: string) => string | null;
    /** The LID an account has learnt for a number; without it only the open connection is asked. */
    lidJidForPhone?: (account: string, jid: string) => string | null;
    settings: GateSettings;
    /** Where the files of media rows are kept (absent: media rows fail at send). */
    media?: MediaStore;
    /**
     * The mappings an account has learnt, read from a store that answers later (a cluster's
     * PostgreSQL): asked when the open connection cannot answer (none here, or no answer).
     */
    storedIdentities?: (account: string) => IdentityResolver;
  }) {
    this.#storedIdentities = opts.storedIdentities;
    this.media = opts.media ?? null;
    this.store = opts.store;
    this.#bus = opts.bus;
    this.#log = opts.log;
    this.#accounts = opts.accounts;
    this.#lookups = { phoneJidForLid: opts.phoneJidForLid, lidJidForPhone: opts.lidJidForPhone };
    this.#settings = opts.settings;
  }

  /** Settles what a previous run left in flight and starts the periodic sweep. */
  async start(): Promise<void> {
    // Listening starts at once; a drain woken meanwhile claims nothing a released row holds back
    // (a row in flight keeps its peer's later rows waiting).
    const released = this.store.releaseSending(null, Date.now());
    this.#unsubscribe.push(
      this.#bus.subscribe({ types: ['account.state'] }, (e) => {
        if (!e.account) return;
        if (e.state === 'open') this.#drain(e.account).kick();
        else if (e.previous === 'open') this.#drain(e.account).disconnected();
      }),
      this.#bus.subscribe({ types: ['account.removed'] }, (e) => {
        if (e.account) this.detach(e.account);
      }),
    );
    this.#sweep = setInterval(() => void this.#sweepOnce(), SWEEP_INTERVAL_MS);
    this.#sweep.unref();
    for (const r of await released) {
      this.#published(r, 'left in flight by the previous run');
      this.#kick(r.account);
    }
  }

  /** Stops sending; rows in flight are put back (or left for settlement at the next start when the store cannot be reached). */
  async stop(): Promise<void> {
    if (this.#sweep) clearInterval(this.#sweep);
    for (const u of this.#unsubscribe.splice(0)) u();
    for (const u of this.#attached.values()) u();
    this.#attached.clear();
    for (const d of this.#drains.values()) d.disconnected();
    // Caught at once: a store that cannot be reached leaves them for the next start (or the next owner).
    const released = Promise.resolve(this.store.releaseSending(null, Date.now())).catch((err: unknown) => {
      this.#log.error({ err }, 'outbox: rows in flight could not be put back at stop; they are settled at the next start');
      return [] as OutboxRow[];
    });
    await this.#serials.allIdle();
    for (const r of await released) this.#published(r, 'daemon stopping');
  }

  /** Applies a new config (policy, pacing, TTL): rows already queued meet the new policy at send time. */
  updateSettings(settings: GateSettings): void {
    this.#settings = settings;
    for (const d of this.#drains.values()) d.updatePacing(settings.pacing(d.account));
  }

  /**
   * Starts listening to an account's connection events (acks, receipts and echoes settle rows; an
   * open starts the settle window). Attaching an account id again replaces the earlier listener.
   */
  attach(accountId: string, account: GateAccount): void {
    this.#attached.get(accountId)?.();
    // One account's events are applied one after another, in the order they came: a store that
    // answers later (PostgreSQL) must not let a `delivered` overtake the `server` ack before it.
    const unsubscribe = account.onConnectionEvent((e) => {
      if (e.type === 'ack') this.#serially(accountId, () => this.#onAck(accountId, e));
      else if (e.type === 'echo') this.#serially(accountId, () => this.#onEcho(accountId, e));
      else if (e.type === 'open') this.#serially(accountId, () => this.#openSettleWindow(accountId));
    });
    this.#attached.set(accountId, unsubscribe);
  }

  /** Runs an account's event handlers one at a time, in arrival order; a failure is logged. */
  #serially(account: string, fn: () => Promise<void>): void {
    this.#serials.run(account, fn).catch((err: unknown) => this.#log.error({ err, account }, 'outbox: applying a connection event failed'));
  }

  /** Resolves once the account's connection events so far are applied (a drain claims only after the settle window is set). */
  eventsApplied(account: string): Promise<void> {
    return this.#serials.idle(account);
  }

  /** Stops listening to a removed account and drops its drain loop (its rows stay in the outbox). */
  detach(accountId: string): void {
    this.#attached.get(accountId)?.();
    this.#attached.delete(accountId);
    this.#settling.delete(accountId);
    const drain = this.#drains.get(accountId);
    if (drain) {
      drain.disconnected();
      this.#drains.delete(accountId);
    }
  }

  /** Accounts whose connection events the gate listens to, and drain loops it keeps (for tests and status). */
  listenerStats(): { attached: number; drains: number } {
    return { attached: this.#attached.size, drains: this.#drains.size };
  }

  /**
   * The single entry for outbound messages. Validates (nothing is stored on bad input), decides
   * the policy, stores the row with its WhatsApp id and audit entry in one transaction, and only
   * then returns. A denied message is stored as `denied` and the caller is told why.
   */
  async enqueue(input: EnqueueInput): Promise<EnqueueResult> {
    const content: OutboundContent = input.content ?? { type: 'text', text: input.text as string };
    const kind = input.kind ?? kindOf(content);
    if (!this.#accounts(input.account)) throw new HttpError(404, 'not_found', `account: no account "${input.account}"`);
    const recipient = normaliseRecipient(input.to ?? '');
    if ('error' in recipient) throw new HttpError(400, 'bad_request', `to: ${recipient.error}`);
    if (content.type === 'text' || content.type === 'edit') {
      if (typeof content.text !== 'string' || content.text.trim() === '') throw new HttpError(400, 'bad_request', 'text: must not be empty');
      if (content.text.length > MAX_TEXT_CHARS) throw new HttpError(400, 'bad_request', `text: longer than ${MAX_TEXT_CHARS} characters (${content.text.length})`);
    }
    if (input.idempotencyKey !== undefined && !/^[\x21-\x7e]{1,200}$/.test(input.idempotencyKey)) {
      throw new HttpError(400, 'bad_request', 'idempotencyKey: expected 1-200 printable characters without spaces');
    }
    const decision = await this.#decide(input.account, recipient.jid, recipient.chatType, kind);
    const state = decision.action === 'allow' ? 'queued' : decision.action === 'hold' ? 'held' : 'denied';
    const now = Date.now();
    const result = await this.#commit(
      {
        account: input.account,
        to: recipient.jid,
        chatType: recipient.chatType,
        kind,
        text: displayText(content),
        ...(isPlainText(content) ? {} : { content }),
        messageId: newMessageId(),
        state,
        reason: decision.action === 'allow' ? null : decision.reason,
        idempotencyKey: input.idempotencyKey ?? null,
        requestId: input.requestId ?? null,
        client: input.client ?? null,
        clientRole: input.role ?? null,
        expiresAt: now + this.#settings.ttlMs,
      },
      {
        at: now,
        account: input.account,
        recipient: recipient.jid,
        kind,
        decision: decision.action,
        rule: decision.rule,
        reason: decision.reason,
        stage: 'enqueue',
        client: input.client ?? null,
        role: input.role ?? null,
        requestId: input.requestId ?? null,
      },
    );
    if (result.created) {
      this.#published(result.row);
      if (state === 'queued') this.#kick(input.account);
    }
    return result;
  }

  /**
   * The one way read receipts leave (blue ticks a person sees): the policy decides kind
   * `receipt` for the chat, the decision is audited, and only an `allow` reaches the account's
   * open connection. A `hold` is not kept for later: a receipt is only worth sending now, so it is
   * refused like a deny. Nothing is queued: with no open connection this is a 409.
   */
  async sendReadReceipts(input: {
    account: string;
    chat: string;
    messages: ReadonlyArray<{ id: string; participant?: string | undefined }>;
    client?: string | undefined;
    role?: CallerRole | undefined;
    requestId?: string | undefined;
  }): Promise<{ decision: PolicyDecision; sent: boolean }> {
    const { account, chat, decision, action, reason } = await this.#receiptDecision(input, (r) =>
      r.action === 'hold' ? `${r.reason} (a read receipt is not held for later)` : r.reason,
    );
    if (action !== 'allow') return { decision: { ...decision, action, reason }, sent: false };
    if (input.messages.length === 0) return { decision, sent: false };
    const conn = account.connection;
    if (!conn) throw new HttpError(409, 'conflict', `account ${input.account} is not connected; read receipts are sent only on an open connection`);
    await conn.sendReadReceipt(chat, input.messages);
    return { decision, sent: true };
  }

  /**
   * The policy on a receipt-like stanza to a chat (kind `receipt`), audited; a `hold` is refused
   * like a deny (such a stanza is only worth sending now). `reason` words the audit entry.
   */
  async #receiptDecision(
    input: { account: string; chat: string; client?: string | undefined; role?: CallerRole | undefined; requestId?: string | undefined },
    reason: (d: PolicyDecision) => string,
  ): Promise<{ account: GateAccount; chat: string; decision: PolicyDecision; action: 'allow' | 'deny'; reason: string }> {
    const account = this.#accounts(input.account);
    if (!account) throw new HttpError(404, 'not_found', `account: no account "${input.account}"`);
    const recipient = normaliseRecipient(input.chat);
    if ('error' in recipient) throw new HttpError(400, 'bad_request', `chat: ${recipient.error}`);
    const decision = await this.#decide(input.account, recipient.jid, recipient.chatType, 'receipt');
    const action = decision.action === 'allow' ? 'allow' : 'deny';
    const why = reason(decision);
    await this.store.recordDecision({
      at: Date.now(),
      account: input.account,
      recipient: recipient.jid,
      kind: 'receipt',
      decision: action,
      rule: decision.rule,
      reason: why,
      stage: 'send',
      client: input.client ?? null,
      role: input.role ?? null,
      requestId: input.requestId ?? null,
    });
    return { account, chat: recipient.jid, decision, action, reason: why };
  }

  /**
   * Asks the sender's phone to upload an expired media file again. The person sees nothing, but
   * the request reaches their phone, so the policy decides it as kind `receipt` for the chat
   * (shadow mode refuses it), audited; only an `allow` reaches the open connection.
   */
  async requestMediaReupload(input: {
    account: string;
    chat: string;
    message: { id: string; participant?: string | undefined };
    media: InboundMediaRef;
  }): Promise<{ directPath: string; url: string }> {
    const { account, chat, decision, action } = await this.#receiptDecision(input, (d) => `media re-upload request for ${input.message.id}: ${d.reason}`);
    if (action !== 'allow') throw new HttpError(403, 'forbidden', `the file expired, and asking the sender's phone to upload it again was refused: ${decision.reason}`);
    const conn = account.connection;
    if (!conn) throw new HttpError(409, 'conflict', `the file expired, and account ${input.account} is not connected to ask the sender's phone for it again`);
    return conn.requestMediaReupload(chat, input.message, input.media);
  }

  /**
   * Group commit: enqueues that arrive while a commit is being prepared share one transaction
   * (one fsync). A lone enqueue waits only for the next turn of the event loop.
   */
  #commit(row: NewRow, audit: Omit<AuditEntry, 'outboxId'>): Promise<EnqueueResult> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ row, audit, resolve, reject });
      if (this.#pending.length === 1) setImmediate(() => void this.#flush());
    });
  }

  /** Enqueue commits so far and the rows they carried (rows/commits shows group commit at work). */
  commitStats(): { commits: number; rows: number } {
    return { commits: this.#commits, rows: this.#committedRows };
  }

  async #flush(): Promise<void> {
    const batch = this.#pending.splice(0);
    if (batch.length === 0) return;
    this.#commits++;
    this.#committedRows += batch.length;
    let results: Array<EnqueueResult | { error: Error }>;
    try {
      results = await this.store.insertMany(batch.map((b) => ({ row: b.row, audit: b.audit })));
    } catch (err) {
      for (const b of batch) b.reject(err as Error);
      return;
    }
    results.forEach((r, i) => ('error' in r ? batch[i]!.reject(r.error) : batch[i]!.resolve(r)));
  }

  /** Operator: a held row goes out (after the policy check at send time). */
  approve(id: number, who: OperatorRequest): Promise<OutboxRow> {
    return this.#operator(id, ['held'], 'queued', 'approve', who, 'approved by operator');
  }

  /** Operator: a held row is refused for good. */
  reject(id: number, who: OperatorRequest): Promise<OutboxRow> {
    return this.#operator(id, ['held'], 'denied', 'reject', who, 'rejected by operator');
  }

  /** Operator: a row not yet on the wire is withdrawn. Its event names the request as `causedBy`. */
  async cancel(id: number, who: OperatorRequest = {}): Promise<OutboxRow> {
    const row = await this.#mustGet(id);
    const by = who.role === 'client' ? `client ${who.client ?? ''}`.trim() : 'operator';
    const moved = await this.store.transition(id, ['queued', 'held'], 'cancelled', { reason: `cancelled by ${by}` });
    if (!moved) throw new HttpError(409, 'conflict', `message ${id} is ${row.state}; only queued or held messages can be cancelled`);
    this.#published(moved, undefined, who.requestId);
    return moved;
  }

  /**
   * Operator: a failed, expired or cancelled row is queued again, with the same WhatsApp id and a
   * fresh budget. Its events until it settles name the request as `causedBy`.
   */
  async retry(id: number, who: OperatorRequest = {}): Promise<OutboxRow> {
    const row = await this.#mustGet(id);
    const moved = await this.store.transition(id, ['failed', 'expired', 'cancelled'], 'queued', {
      reason: null,
      attempts: 0,
      nextAttemptAt: 0,
      expiresAt: Date.now() + this.#settings.ttlMs,
    });
    if (!moved) throw new HttpError(409, 'conflict', `message ${id} is ${row.state}; only failed, expired or cancelled messages can be retried`);
    this.#published(moved, undefined, who.requestId);
    this.#kick(moved.account);
    return moved;
  }

  /**
   * The send itself: the only call into a WhatsApp connection's send in the whole daemon. The
   * wire send is counted before the stanza is written (a crash mid-send then leaves a trace) and taken back
   * when the connection says nothing was written (SendNotWrittenError): only a send whose bytes
   * may have left counts, so a send that failed locally neither makes the row `unknown` nor
   * keeps it from expiring.
   */
  async sendOnWire(conn: WaSender, row: OutboxRow): Promise<void> {
    const content: OutboundContent = row.content ?? { type: 'text', text: row.text };
    const media = mediaOf(content);
    if (media) this.#mediaPath(media.sha256); // a file that is gone fails the row before anything is counted
    // Counted once the message is built, just before its stanza is written: building it (media
    // encrypted and uploaded) writes nothing to the chat, so a crash during an upload leaves a
    // row that is simply sent again, with no settle window.
    let counted = false;
    const count = async (wire?: Uint8Array) => {
      if (counted) return;
      if (wire && !(await this.store.noteWireSendOf(row.id, wire, Date.now() + LEASE_MS))) {
        throw new SendNotWrittenError('not sent: the message was released (connection closed) while it was being built');
      }
      counted = true;
      if (!wire) await this.store.noteWireSend(row.id);
    };
    // Building a media message uploads its file first, which may take longer than a lease: the
    // row stays claimed meanwhile (a closing connection still releases it at once).
    if (media) await this.store.transition(row.id, ['sending'], 'sending', { leaseUntil: Date.now() + UPLOAD_LEASE_MS });
    try {
      await conn.send(row.to, content, row.messageId, { mediaPath: (sha256) => this.#mediaPath(sha256), prepared: (wire) => count(wire) });
    } catch (err) {
      if (!isNotWritten(err)) await count();
      else if (counted) await this.#takeBackWireSend(row);
      throw err;
    }
    // A connection that did not say when its message was built: the send happened all the same.
    await count();
  }

  /** A media file's path in the store; a permanent error when it is not there. */
  #mediaPath(sha256: string): string {
    try {
      if (!this.media) throw new Error('no media store');
      return this.media.pathOf(sha256);
    } catch {
      throw Object.assign(new SendNotWrittenError(`not sent: its media file ${sha256} is not in the media store`), { output: { statusCode: 410 } });
    }
  }

  /** Undoes the count of a send that wrote nothing, also when a closing socket has already released the row. */
  async #takeBackWireSend(before: OutboxRow): Promise<void> {
    const row = await this.store.get(before.id);
    if (row?.state === 'sending') {
      await this.store.transition(row.id, ['sending'], 'sending', { wireSends: before.wireSends });
    } else if (row?.state === 'unknown' && row.wireSends === before.wireSends + 1) {
      if (before.wireSends > 0) {
        await this.store.transition(row.id, ['unknown'], 'unknown', { wireSends: before.wireSends });
        return;
      }
      // It never reached the wire, so there is nothing to settle: it goes as soon as it can.
      const moved = await this.store.transition(row.id, ['unknown'], 'queued', { wireSends: 0, nextAttemptAt: 0 });
      if (!moved) return;
      this.#settling.get(row.account)?.delete(row.id);
      this.#published(moved, 'nothing was written before the connection closed');
      this.#kick(row.account);
    }
  }

  /** Ends a row's settle window when the drain claims it for a re-send; true if it was in one. */
  endSettle(account: string, id: number): boolean {
    return this.#settling.get(account)?.delete(id) ?? false;
  }

  /** Policy for a row about to go out; stores and publishes the refusal when it is not allowed. */
  async checkAtSend(row: OutboxRow): Promise<boolean> {
    const d = await this.#decide(row.account, row.to, row.chatType, row.kind);
    // An operator's approval answers a hold; a deny (rule, allowTo, operators) still stops it.
    if (d.action === 'allow' || (d.action === 'hold' && row.approvedBy)) return true;
    const to: OutboxState = d.action === 'hold' ? 'held' : 'denied';
    const moved = await this.store.transitionWithAudit(row.id, ['sending'], to, { reason: d.reason, leaseUntil: null }, {
      at: Date.now(),
      account: row.account,
      recipient: row.to,
      kind: row.kind,
      decision: d.action,
      rule: d.rule,
      reason: d.reason,
      stage: 'send',
      client: row.client,
      role: row.clientRole ?? null,
      requestId: row.requestId,
    });
    if (moved) this.#published(moved);
    return false;
  }

  /** Publishes a row's new state on the event bus, with the request that enqueued it. */
  published(row: OutboxRow, note?: string): void {
    this.#published(row, note);
  }

  /** Send-error backoff for the n-th error. */
  retryDelay(attempts: number): number {
    const { initialMs, maxMs } = this.#settings.retry;
    return Math.floor(Math.random() * Math.min(maxMs, initialMs * 2 ** Math.max(0, attempts - 1)));
  }

  /** Send errors a row may have before it fails. */
  get maxAttempts(): number {
    return this.#settings.maxAttempts;
  }

  /**
   * Decides with the peer's other identity as the account knows it; when the answer rests on an
   * identity not known, asks the open connection for it, and without an answer stays refused.
   */
  async #decide(account: string, peer: string, chatType: 'direct' | 'group', kind: SendKind): Promise<PolicyDecision> {
    const req = { account, peer, chatType, kind, ...knownIdentities(this.#lookups, account, peer) };
    const first = evaluate(this.#settings.policy, req);
    if (!first.unresolved) return first.decision;
    const asked = (await askIdentities(this.#accounts(account)?.resolver, peer)) ?? (this.#storedIdentities ? await askIdentities(this.#storedIdentities(account), peer) : null);
    return asked ? decide(this.#settings.policy, { ...req, ...asked }) : first.decision;
  }

  async #operator(id: number, from: OutboxState[], to: OutboxState, decision: 'approve' | 'reject', who: OperatorRequest, reason: string): Promise<OutboxRow> {
    const row = await this.#mustGet(id);
    const approvedBy = decision === 'approve' ? `${who.client ?? 'unknown client'} ${who.requestId ?? ''}`.trim() : undefined;
    const moved = await this.store.transitionWithAudit(id, from, to, { reason: to === 'queued' ? null : reason, ...(approvedBy ? { approvedBy } : {}) }, {
      at: Date.now(),
      account: row.account,
      recipient: row.to,
      kind: row.kind,
      decision,
      rule: 'operator',
      reason,
      stage: 'operator',
      client: who.client ?? null,
      role: who.role ?? null,
      requestId: who.requestId ?? null,
    });
    if (!moved) throw new HttpError(409, 'conflict', `message ${id} is ${row.state}, not held`);
    this.#published(moved, undefined, who.requestId);
    if (to === 'queued') this.#kick(moved.account);
    return moved;
  }

  async #mustGet(id: number): Promise<OutboxRow> {
    const row = await this.store.get(id);
    if (!row) throw new HttpError(404, 'not_found', `no message ${id}`);
    return row;
  }

  async #onAck(account: string, e: Extract<WaEvent, { type: 'ack' }>): Promise<void> {
    const row = await this.store.getByMessageId(e.messageId);
    if (!row || row.account !== account) return;
    const now = Date.now();
    // An unknown row expired by its TTL may still have reached the peer: proof that it did wins.
    const ambiguous: OutboxState[] = row.wireSends > 0 ? ['sending', 'unknown', 'expired'] : ['sending', 'unknown'];
    let moved: OutboxRow | null = null;
    switch (e.status) {
      case 'server':
        moved = await this.store.transition(row.id, ambiguous, 'sent', { sentAt: now, leaseUntil: null }, now);
        break;
      case 'delivered':
        moved = await this.store.transition(row.id, [...ambiguous, 'sent'], 'delivered', { deliveredAt: now, sentAt: row.sentAt ?? now, leaseUntil: null }, now);
        break;
      case 'read':
      case 'played':
        moved = await this.store.transition(row.id, [...ambiguous, 'sent', 'delivered'], 'read', { readAt: now, sentAt: row.sentAt ?? now, leaseUntil: null }, now);
        break;
      case 'error':
        moved = await this.store.transition(row.id, ['sending', 'unknown'], 'failed', { reason: `server refused the message (error ${e.error ?? '?'})`, leaseUntil: null }, now);
        break;
    }
    if (moved) this.#settled(account, moved, row.state === 'unknown' ? 'settled by the server\'s ack or a receipt' : undefined);
  }

  /**
   * Our own message id shown to us by the server settles an unknown row inside its settle window.
   * Only there: Baileys also emits a local copy of every message it sends (after handing it to
   * the socket, before any server has seen it), which arrives while the row is still `sending`
   * on the connection that sent it, and proves nothing.
   */
  async #onEcho(account: string, e: Extract<WaEvent, { type: 'echo' }>): Promise<void> {
    const row = await this.store.getByMessageId(e.messageId);
    if (!row || row.account !== account || !this.#settling.get(account)?.has(row.id)) return;
    const now = Date.now();
    const moved = await this.store.transition(row.id, ['unknown'], 'sent', { sentAt: now, leaseUntil: null }, now);
    if (moved) this.#settled(account, moved, 'settled by an echo of its id from the server');
  }

  #settled(account: string, row: OutboxRow, note: string | undefined): void {
    this.#settling.get(account)?.delete(row.id);
    this.#published(row, note);
    this.#kick(account); // the next message to this peer may go now
  }

  /** A connection opened: its unknown rows get the settle window before any re-send. */
  async #openSettleWindow(account: string): Promise<void> {
    const ms = this.#settings.settleMs;
    if (ms <= 0) return;
    const now = Date.now();
    try {
      const rows = await this.store.deferUnknown(account, now + ms, now);
      if (rows.length === 0) this.#settling.delete(account);
      else this.#settling.set(account, new Set(rows.map((r) => r.id)));
    } catch (err) {
      this.#log.error({ err, account }, 'outbox settle window failed');
    }
  }

  async #sweepOnce(): Promise<void> {
    if (this.#sweeping) return; // a slow store: the next tick does the work
    this.#sweeping = true;
    const now = Date.now();
    try {
      for (const r of await this.store.expireDue(now)) this.#published(r);
      for (const r of await this.store.releaseSending(null, now, true)) {
        this.#published(r, 'no server ack within the lease');
      }
      // Only the accounts with rows to claim: kicking every drain ran a claim transaction per
      // account in one turn of the loop (tens of milliseconds every sweep at a thousand accounts).
      for (const account of await this.store.accountsWithRowsToSend()) this.#drains.get(account)?.kick();
    } catch (err) {
      this.#log.error({ err }, 'outbox sweep failed');
    } finally {
      this.#sweeping = false;
    }
  }

  /** Asks an account's drain for a pass (a row for it arrived through another daemon). */
  kick(account: string): void {
    this.#drains.get(account)?.kick();
  }

  /**
   * A drain pass for an account that is still there: called after the store answered, by when a
   * removed account's drain is gone and must not come back.
   */
  #kick(account: string): void {
    if (this.#accounts(account)) this.#drain(account).kick();
  }

  #drain(account: string): AccountDrain {
    let d = this.#drains.get(account);
    if (!d) {
      d = new AccountDrain(account, this, () => this.#accounts(account)?.connection ?? null, this.#settings.pacing(account), this.#log);
      this.#drains.set(account, d);
    }
    return d;
  }

  #published(row: OutboxRow, note?: string, causedBy?: string): void {
    if (causedBy) this.#causedBy.set(row.id, causedBy);
    const cause = this.#causedBy.get(row.id);
    if (cause && (row.state === 'held' || FINAL_STATES.includes(row.state))) this.#causedBy.delete(row.id);
    this.#bus.publish({
      type: `message.${row.state}`,
      account: row.account,
      ...(row.requestId ? { requestId: row.requestId } : {}),
      ...(cause ? { causedBy: cause } : {}),
      id: row.id,
      messageId: row.messageId,
      to: row.to,
      kind: row.kind,
      state: row.state,
      ...(row.reason ? { reason: row.reason } : {}),
      ...(note ? { note } : {}),
      wireSends: row.wireSends,
    });
  }
}

/** Drains one account's rows while its connection is open: one loop at a time, in claim order. */
class AccountDrain {
  readonly account: string;
  readonly #gate: SendGate;
  readonly #connection: () => WaSender | null;
  readonly #bucket: TokenBucket;
  readonly #log: Log;
  #running = false;
  #again = false;
  #wake: NodeJS.Timeout | null = null;
  #abort = new AbortController();

  constructor(account: string, gate: SendGate, connection: () => WaSender | null, pacing: PacingPolicy, log: Log) {
    this.account = account;
    this.#gate = gate;
    this.#connection = connection;
    this.#bucket = new TokenBucket(pacing ?? DEFAULT_PACING, Date.now());
    this.#log = log;
  }

  updatePacing(p: PacingPolicy): void {
    this.#bucket.setPolicy(p);
  }

  /** Asks for a drain pass (coalesced when one is running). */
  kick(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    void this.#run()
      .catch((err: unknown) => this.#log.error({ err, account: this.account }, 'outbox drain failed'))
      .finally(() => {
        this.#running = false;
        if (this.#again) {
          this.#again = false;
          this.kick();
        }
      });
  }

  /** The socket went away: stop waiting, put claimed rows back (unknown if they reached the wire). */
  disconnected(): void {
    this.#abort.abort();
    this.#abort = new AbortController();
    if (this.#wake) clearTimeout(this.#wake);
    void (async () => {
      for (const r of await this.#gate.store.releaseSending(this.account, Date.now())) this.#gate.published(r, 'connection closed');
    })().catch((err: unknown) => this.#log.error({ err, account: this.account }, 'outbox: putting in-flight rows back failed'));
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    await this.#gate.eventsApplied(this.account);
    for (;;) {
      const conn = this.#connection();
      if (!conn || signal.aborted) return;
      const now = Date.now();
      const wait = this.#bucket.waitMs(now);
      if (wait > 0) return this.#wakeIn(wait);
      const row = await this.#gate.store.claimNext(this.account, now, LEASE_MS);
      if (!row) {
        const due = await this.#gate.store.nextDueAt(this.account);
        if (due !== null && due > now) this.#wakeIn(due - now);
        return;
      }
      const resend = this.#gate.endSettle(this.account, row.id);
      if (row.expiresAt !== null && row.expiresAt <= now) {
        const expired = await this.#gate.store.transition(row.id, ['sending'], 'expired', { reason: expiryReason(row), leaseUntil: null });
        if (expired) this.#gate.published(expired);
        continue;
      }
      if (!(await this.#gate.checkAtSend(row))) continue;
      const newChat = row.wireSends === 0 && !(await this.#gate.store.hasWrittenTo(this.account, row.to));
      const chatWait = newChat ? this.#bucket.newChatWaitMs(now) : 0;
      if (chatWait > 0) {
        // Only this row waits for room under the new-chat cap; rows to known chats go on.
        const back = await this.#gate.store.transition(row.id, ['sending'], 'queued', { nextAttemptAt: now + chatWait, leaseUntil: null });
        if (back) this.#gate.published(back, 'waiting for room under pacing.newChatsPerHour');
        continue;
      }
      this.#bucket.take(now, newChat);
      const jitter = this.#bucket.jitter();
      if (jitter > 0) {
        await new Promise((r) => setTimeout(r, jitter));
        if (this.#connection() !== conn) {
          this.disconnected();
          return;
        }
      }
      await this.#sendOne(conn, row, resend ? 'no ack, receipt or echo within the settle window: sent again with the same id' : undefined);
    }
  }

  async #sendOne(conn: WaSender, row: OutboxRow, note?: string): Promise<void> {
    this.#gate.published(row, note);
    let release: () => void;
    try {
      release = await this.#gate.building.acquire(this.#abort.signal);
    } catch {
      return; // the socket went away meanwhile: disconnected() has put the row back
    }
    try {
      await this.#gate.sendOnWire(conn, row).finally(release);
    } catch (err) {
      const now = Date.now();
      // Nothing written: the row is as it was before this send (queued, or unknown after an
      // earlier send); else it may be on the wire and is unknown.
      const after: OutboxState = isNotWritten(err) && row.wireSends === 0 ? 'queued' : 'unknown';
      if (this.#connection() !== conn) {
        // The socket went away mid-send: not the message's fault, so no attempt is spent.
        const moved = await this.#gate.store.transition(row.id, ['sending'], after, { leaseUntil: null }, now);
        if (moved) this.#gate.published(moved, 'connection closed during the send');
        return;
      }
      const attempts = row.attempts + 1;
      const permanent = isPermanent(err);
      if (permanent || attempts >= this.#gate.maxAttempts) {
        const failed = await this.#gate.store.transition(row.id, ['sending'], 'failed', {
          attempts,
          leaseUntil: null,
          reason: `${permanent ? 'permanent error' : `gave up after ${attempts} attempts`}: ${(err as Error).message}`,
        }, now);
        if (failed) this.#gate.published(failed);
        return;
      }
      const back = await this.#gate.store.transition(row.id, ['sending'], after, {
        attempts,
        leaseUntil: null,
        nextAttemptAt: now + this.#gate.retryDelay(attempts),
        reason: `send error: ${(err as Error).message}`,
      }, now);
      if (back) this.#gate.published(back);
      return;
    }
    // On the wire: it stays `sending` until the server's ack (or `unknown` when the lease runs out).
    // Outside the send's error handling: the send happened, so a store error here is no send error
    // (the row keeps the lease the wire-send mark gave it).
    try {
      await this.#gate.store.transition(row.id, ['sending'], 'sending', { leaseUntil: Date.now() + LEASE_MS });
    } catch (err) {
      this.#log.error({ err, account: this.account, id: row.id }, 'outbox: extending the lease of a sent row failed');
    }
  }

  #wakeIn(ms: number): void {
    if (this.#wake) clearTimeout(this.#wake);
    this.#wake = setTimeout(() => this.kick(), Math.max(1, ms));
    this.#wake.unref();
  }
}

/** Errors that a retry cannot fix: the request itself was refused (4xx other than timeouts). */
function isPermanent(err: unknown): boolean {
  const status = (err as { output?: { statusCode?: number } }).output?.statusCode;
  if (status === undefined) return false;
  return status >= 400 && status < 500 && ![408, 428, 429, 440].includes(status);
}
