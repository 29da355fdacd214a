// One account's supervisor: the state machine of docs/accounts.md. Exactly one connect loop runs
// per account; one AbortSignal reaches every wait in it, so stop() takes effect at once. Status
// is read from this object, the same one that holds the connection used for sending.
import pRetry, { AbortError } from 'p-retry';
import type { EventBus } from '../events/bus.js';
import type { Log } from '../log.js';
import type { AccountState, AccountSummary, CloseRecord } from '../control/wire.js';
import type { WaConnection, WaConnector, WaEvent } from '../wa/types.js';
import { abortableSleep } from './abortable-sleep.js';
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import { actionForClose, type CloseAction, type CloseInfo } from './close-policy.js';
import { FlapDetector, type FlapPolicy, type FlapReport } from './flap-detector.js';
import { LivenessMonitor, type KeepalivePolicy, type TrafficRecord } from './liveness.js';
import { onAbort } from './on-abort.js';
import type { Semaphore } from '../semaphore.js';
import { RestartGuard } from './restart-guard.js';

/** Per-account settings, resolved from the config (account overrides over globals). */
export interface RunnerSettings {
  wsUrl?: string | undefined;
  keepalive: KeepalivePolicy;
  reconnect: BackoffPolicy;
  /** The connect watchdog: no `open` within this long ends the attempt. */
  connectTimeoutMs: number;
  flap: FlapPolicy;
}

/** What the runner needs from the daemon. */
export interface RunnerDeps {
  connector: WaConnector;
  bus: Pick<EventBus, 'publish'>;
  gate: Semaphore;
  log: Log;
  random?: () => number;
  /** The largest event-loop delay since a moment (epoch ms), for the record of a close (loop-health.ts). */
  loopDelaySince?: (since: number) => number;
  /** Each answered keepalive probe's round trip (metrics). */
  observeProbeRtt?: (account: string, ms: number) => void;
  /** Draws how early in its interval's last tenth each probe goes (liveness.ts PROBE_SPREAD); absent: on the interval. */
  probeSpread?: () => number;
}

/**
 * A connection that stayed open this long resets the failure count; one that closes sooner keeps
 * backing off, so a server that accepts the login and drops it at once cannot make us spin.
 */
export const STABLE_OPEN_MS = 10_000;

/** A close is recorded with the largest event-loop delay of this long before it. */
export const CLOSE_LOOP_WINDOW_MS = 60_000;

/** The account as status shows it. */
export type AccountStatus = AccountSummary;

/** Events a pairing request sees. */
export type PairEvent = { type: 'qr'; qr: string } | { type: 'code'; code: string } | { type: 'paired'; jid: string } | { type: 'error'; message: string };

/** A pairing request: a phone number for a pairing code (else QR), and where its events go. */
export interface PairRequest {
  phone: string | undefined;
  requestId: string | undefined;
  onEvent: (e: PairEvent) => void;
}

/** Thrown inside the connect loop to leave it for a terminal state. */
class TerminalClose extends Error {
  constructor(readonly close: CloseInfo, readonly state: 'needs_pairing' | 'conflict' | 'forbidden') {
    super(`${close.name} (${close.code ?? '-'})`);
  }
}
/** Thrown inside the loop for a close that wants an immediate reconnect (515). */
class ReconnectNow extends Error {}
/** A close before open that should be retried with backoff. */
class RetryableClose extends Error {
  constructor(readonly close: CloseInfo) {
    super(`${close.name} (${close.code ?? '-'}): ${close.message}`);
  }
}

/** A close and what the runner decided to do about it. */
interface ClassifiedClose {
  close: CloseInfo;
  action: CloseAction;
}

/** An open connection, and its close (watched from the moment it opened, so none is missed). */
interface Opened {
  conn: WaConnection;
  closed: Promise<ClassifiedClose>;
}

/** Supervises one account. */
export class AccountRunner {
  readonly id: string;
  #settings: RunnerSettings;
  readonly #deps: RunnerDeps;
  readonly #flap: FlapDetector;
  readonly #restarts = new RestartGuard();
  #state: AccountState = 'stopped';
  #since = new Date();
  #abort: AbortController | null = null;
  #loop: Promise<void> | null = null;
  #conn: WaConnection | null = null;
  #liveness: LivenessMonitor | null = null;
  #stableTimer: NodeJS.Timeout | null = null;
  #failures = 0;
  #nextRetryAt: Date | null = null;
  #jid: string | null = null;
  #name: string | null = null;
  #connectedSince: Date | null = null;
  #lastClose: CloseRecord | null = null;
  /** When the current creds were first saved; undefined until read (or after they changed). */
  #authCreatedAt: number | null | undefined = undefined;
  #lastInboundAt: Date | null = null;
  #retryReceipts = 0;
  #lastRetryReceiptAt: Date | null = null;
  #lastTraffic: TrafficRecord | null = null;
  #degraded: (FlapReport & { since: string }) | null = null;
  #pairing: PairRequest | null = null;
  readonly #closesByCode: Record<string, number> = {};
  #statusCache: { key: unknown[]; json: string } | null = null;
  #statusKey: unknown[] = [];
  readonly #connListeners = new Set<(e: WaEvent) => void>();

  constructor(id: string, settings: RunnerSettings, deps: RunnerDeps) {
    this.id = id;
    this.#settings = settings;
    this.#deps = deps;
    this.#flap = new FlapDetector(settings.flap);
  }

  /** The current state. */
  get state(): AccountState {
    return this.#state;
  }

  /** The open connection, if any (the send gate uses it). */
  get connection(): WaConnection | null {
    return this.#state === 'open' ? this.#conn : null;
  }

  /** What the send gate may ask of the open connection besides sending: a peer's other identity. */
  get resolver(): Pick<WaConnection, 'resolveIdentity'> | null {
    return this.connection;
  }

  /** Listens to every event of every connection this runner makes (inbound messages, acks). */
  onConnectionEvent(listener: (e: WaEvent) => void): () => void {
    this.#connListeners.add(listener);
    return () => this.#connListeners.delete(listener);
  }

  /**
   * Applies new settings (config reload) without dropping the connection: keepalive from the next
   * probe, backoff from the next wait. A changed wsUrl needs a reconnect; the caller decides.
   */
  updateSettings(settings: RunnerSettings): void {
    this.#settings = settings;
    this.#liveness?.setPolicy(settings.keepalive);
  }

  /** The settings in force. */
  get settings(): RunnerSettings {
    return this.#settings;
  }

  /** Starts supervising: connects when paired, else waits in `needs_pairing` for a pair command. */
  start(): void {
    if (this.#loop) return;
    if (!this.#deps.connector.isRegistered(this.id)) {
      this.#setState('needs_pairing', { reason: 'not paired yet' });
      return;
    }
    this.#runLoop();
  }

  /** Stops at once: aborts any wait, ends the connection, state `stopped`. */
  async stop(reason = 'stopped by operator'): Promise<void> {
    this.#abort?.abort(new Error(reason));
    this.#endConnection({ code: null, name: 'local', message: reason });
    await this.#loop?.catch(() => {});
    this.#failPairing(reason);
    this.#setState('stopped', { reason });
  }

  /** Operator command: reconnect now, also out of a terminal state (after the cause was fixed). */
  async reconnect(reason = 'reconnect requested by operator'): Promise<void> {
    await this.stop(reason);
    this.#failures = 0;
    this.start();
  }

  /**
   * Pairs the account: connects with fresh creds and reports QR codes (or a pairing code when a
   * phone number is given) to onEvent, then `paired`. Only one pairing at a time.
   */
  async pair(req: PairRequest): Promise<void> {
    if (this.#pairing) throw new Error(`account ${this.id} is already pairing`);
    if (this.#deps.connector.isRegistered(this.id) && this.#state === 'open') {
      throw new Error(`account ${this.id} is already paired and open; log it out first`);
    }
    await this.stop('pairing requested');
    // A pairing ends with a 515 by design; earlier 515s of the old session say nothing about it.
    this.#restarts.reset();
    this.#pairing = req;
    this.#setState('pairing', { requestId: req.requestId });
    this.#runLoop();
  }

  /** Ends a pairing in progress (its requester went away); the account waits in `needs_pairing`. */
  async cancelPairing(reason = 'pairing cancelled'): Promise<void> {
    if (this.#state !== 'pairing') return;
    await this.stop(reason);
    this.#setState('needs_pairing', { reason });
  }

  /** Logs the device out on the server (when connected), archives the creds, and waits for pairing. */
  async logout(): Promise<void> {
    const conn = this.#conn;
    if (conn && this.#state === 'open') {
      await conn.logout().catch((err: unknown) => this.#deps.log.warn({ err, account: this.id }, 'logout on the server failed'));
    }
    await this.stop('logged out by operator');
    this.#deps.connector.archiveCreds(this.id, 'logout by operator');
    this.#authCreatedAt = undefined;
    this.#setState('needs_pairing', { reason: 'logged out by operator' });
  }

  /** The status snapshot. */
  status(): AccountStatus {
    const traffic = this.#liveness?.traffic ?? this.#lastTraffic;
    const iso = (t: number | null | undefined) => (t ? new Date(t).toISOString() : null);
    const authCreated = this.#authCreated();
    return {
      id: this.id,
      state: this.#state,
      since: this.#since.toISOString(),
      ...(this.#settings.wsUrl ? { wsUrl: this.#settings.wsUrl } : {}),
      jid: this.#jid,
      name: this.#name,
      connectedSince: this.#connectedSince?.toISOString() ?? null,
      lastClose: this.#lastClose,
      reconnect: { failures: this.#failures, nextRetryAt: this.#nextRetryAt?.toISOString() ?? null },
      keepalive: traffic
        ? {
            intervalMs: this.#settings.keepalive.intervalMs,
            lastSentAt: iso(traffic.lastSentAt),
            lastStanzaSentAt: iso(traffic.lastStanzaSentAt),
            lastReceivedAt: iso(traffic.lastReceivedAt),
            largestSilentGapMs: traffic.largestSilentGapMs,
            probesSent: traffic.probesSent,
            probesMissed: traffic.probesMissed,
            lastProbeRttMs: traffic.lastProbeRttMs,
          }
        : null,
      lastInboundAt: this.#lastInboundAt?.toISOString() ?? null,
      retryReceipts: { received: this.#retryReceipts, lastAt: this.#lastRetryReceiptAt?.toISOString() ?? null },
      authSince: authCreated ? new Date(authCreated).toISOString() : null,
      degraded: this.#degraded,
      closesByCode: { ...this.#closesByCode },
    };
  }

  /**
   * status() as JSON, built again only when a field it shows changed: status of thousands of
   * accounts joins strings kept from the last request instead of building and serialising every
   * account's summary each time. The key lists every value status() reads; objects count by
   * identity (every field of the runner that status shows is replaced, never changed in place,
   * except the close counts, which change with lastClose).
   */
  statusJson(): string {
    const t = this.#liveness?.traffic ?? this.#lastTraffic;
    const authCreated = this.#authCreated();
    // Filled in place: a status of thousands of accounts allocates no key per account.
    const key = this.#statusKey;
    key.length = 0;
    key.push(
      this.#state,
      this.#since,
      this.#settings.wsUrl,
      this.#settings.keepalive.intervalMs,
      this.#jid,
      this.#name,
      this.#connectedSince,
      this.#lastClose,
      this.#failures,
      this.#nextRetryAt,
      t,
      t?.lastSentAt,
      t?.lastStanzaSentAt,
      t?.lastReceivedAt,
      t?.largestSilentGapMs,
      t?.probesSent,
      t?.probesMissed,
      t?.lastProbeRttMs,
      this.#lastInboundAt,
      this.#retryReceipts,
      this.#lastRetryReceiptAt,
      authCreated,
      this.#degraded,
    );
    const cached = this.#statusCache;
    if (cached && sameValues(cached.key, key)) return cached.json;
    const json = JSON.stringify(this.status());
    // The key becomes the cache's; the old cache's array is the next one filled.
    this.#statusKey = cached ? cached.key : [];
    this.#statusCache = { key, json };
    return json;
  }

  /**
   * When the creds were made: read once and kept (status of thousands of accounts must not query
   * each one's creds); it changes only when creds are saved or archived, which clear it.
   */
  #authCreated(): number | null {
    if (this.#authCreatedAt === undefined) this.#authCreatedAt = this.#deps.connector.authCreatedAt(this.id);
    return this.#authCreatedAt;
  }

  #runLoop(): void {
    const abort = new AbortController();
    this.#abort = abort;
    this.#loop = this.#supervise(abort.signal)
      .catch((err: unknown) => {
        if (abort.signal.aborted) return;
        this.#deps.log.error({ err, account: this.id }, 'account loop failed');
      })
      .finally(() => {
        if (this.#abort === abort) {
          this.#abort = null;
          this.#loop = null;
        }
      });
  }

  async #supervise(signal: AbortSignal): Promise<void> {
    let firstConnect = this.#state !== 'pairing';
    while (!signal.aborted) {
      let opened: Opened;
      try {
        opened = await pRetry(() => this.#attempt(signal, firstConnect), {
          retries: Number.POSITIVE_INFINITY,
          minTimeout: 0,
          factor: 1,
          signal,
          shouldConsumeRetry: ({ error }) => !(error instanceof ReconnectNow),
          onFailedAttempt: async ({ error }) => {
            if (error instanceof ReconnectNow) return;
            // A pairing attempt that fails ends the pairing; it is not retried behind the operator's back.
            if (this.#pairing && error instanceof RetryableClose) throw error;
            this.#failures++;
            if (error instanceof RetryableClose) this.#setState('reconnecting', { close: error.close });
            await this.#backoff(signal);
          },
        });
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof TerminalClose) {
          this.#enterTerminal(err);
          return;
        }
        if (err instanceof RetryableClose && this.#pairing) {
          this.#failPairing(`pairing ended: ${err.message}`);
          this.#setState('needs_pairing', { reason: 'pairing did not complete' });
          return;
        }
        throw err;
      }
      firstConnect = false;
      const openedAt = Date.now();
      const ended = await this.#closed(opened, signal);
      if (signal.aborted || !ended) return;
      const { close, action } = ended;
      if (action.kind === 'stop') {
        this.#enterTerminal(new TerminalClose(close, action.state));
        return;
      }
      if (action.kind === 'reconnect_now') continue;
      if (Date.now() - openedAt >= STABLE_OPEN_MS) this.#failures = 0;
      this.#failures++;
      this.#setState('reconnecting', { close });
      await this.#backoff(signal);
    }
  }

  /** One connect attempt: resolves with the connection once open; throws a classified close otherwise. */
  async #attempt(signal: AbortSignal, firstConnect: boolean): Promise<Opened> {
    signal.throwIfAborted();
    if (this.#state !== 'pairing') this.#setState(firstConnect && this.#failures === 0 ? 'connecting' : 'reconnecting');
    const release = await this.#deps.gate.acquire(signal);
    try {
      // A stop may have come while the slot was being granted: no connection is made then.
      signal.throwIfAborted();
      return await new Promise<Opened>((resolve, reject) => {
        const conn = this.#deps.connector.connect({
          account: this.id,
          wsUrl: this.#settings.wsUrl,
          connectTimeoutMs: this.#settings.connectTimeoutMs,
        });
        this.#conn = conn;
        let opened = false;
        let pairingCodeAsked = false;
        let removeAbort = () => {};
        const watchdog = setTimeout(() => {
          conn.terminate({ code: null, name: 'watchdog', message: `no open within ${this.#settings.connectTimeoutMs} ms` });
        }, this.#pairing ? Math.max(this.#settings.connectTimeoutMs, 120_000) : this.#settings.connectTimeoutMs);
        conn.onEvent((e) => {
          for (const l of this.#connListeners) l(e);
          // New creds (a pairing) may be new auth: read again at the next status.
          if (e.type === 'creds_saved') this.#authCreatedAt = undefined;
          switch (e.type) {
            case 'qr':
              if (!this.#pairing) {
                // Never show a QR nobody asked for: an unpaired session here means the creds were lost.
                conn.terminate({ code: 401, name: 'loggedOut', message: 'server asked to pair; no pairing was requested' });
                return;
              }
              if (this.#pairing.phone) {
                if (!pairingCodeAsked) {
                  pairingCodeAsked = true;
                  conn.requestPairingCode(this.#pairing.phone).then(
                    (code) => this.#pairEvent({ type: 'code', code }),
                    (err: Error) => this.#pairEvent({ type: 'error', message: `pairing code request failed: ${err.message}` }),
                  );
                }
              } else this.#pairEvent({ type: 'qr', qr: e.qr });
              return;
            case 'open': {
              opened = true;
              clearTimeout(watchdog);
              removeAbort();
              release();
              // Watched from here, in the same event, so a close that comes before the loop
              // awaits it (a stop, say) is not missed.
              const closed = this.#untilClosed(conn);
              this.#onOpen(conn, e.jid, e.name);
              resolve({ conn, closed });
              return;
            }
            case 'close':
              clearTimeout(watchdog);
              removeAbort();
              release();
              if (!opened) {
                const action = this.#actionFor(e.close);
                this.#recordClose(e.close, action);
                reject(this.#classify(e.close, action));
              }
              return;
            case 'inbound':
              // Stored and published by the inbox, which listens to this connection too.
              this.#lastInboundAt = new Date();
              this.#liveness?.noteReceived();
              return;
            case 'retry_requested':
              this.#retryReceipts += 1;
              this.#lastRetryReceiptAt = new Date();
              this.#deps.bus.publish({ type: 'message.retry_requested', account: this.id, messageId: e.messageId, from: e.from, count: e.count });
              return;
            case 'group_participants':
              this.#deps.bus.publish({ type: 'group.participants', account: this.id, group: e.group, action: e.action, participants: e.participants, ...(e.author ? { author: e.author } : {}) });
              return;
            case 'group_updated':
              this.#deps.bus.publish({ type: 'group.updated', account: this.id, group: e.group, ...e.changes, ...(e.author ? { author: e.author } : {}) });
              return;
            case 'stanza_in':
              this.#liveness?.noteReceived();
              return;
            case 'stanza_out':
              this.#liveness?.noteStanzaSent();
              return;
            default:
              return;
          }
        });
        // Added after the listener above: a signal that is already aborted terminates at once,
        // and that close must reach the listener.
        removeAbort = onAbort(signal, () => conn.terminate({ code: null, name: 'local', message: 'stopping' }));
      });
    } finally {
      release();
    }
  }

  /**
   * The action for a close: the table of close-policy.ts, except that a 515 within the restart
   * window of the previous one backs off like any other close (and so counts toward flapping).
   */
  #actionFor(close: CloseInfo): CloseAction {
    const action = actionForClose(close);
    if (action.kind !== 'reconnect_now' || this.#restarts.allowImmediate(Date.now())) return action;
    return { kind: 'backoff' };
  }

  #classify(close: CloseInfo, action: CloseAction): Error {
    if (action.kind === 'stop') return new AbortError(new TerminalClose(close, action.state));
    if (action.kind === 'reconnect_now') return new ReconnectNow(close.message);
    return new RetryableClose(close);
  }

  #onOpen(conn: WaConnection, jid: string, name: string | null): void {
    this.#jid = jid || null;
    this.#name = name;
    this.#connectedSince = new Date();
    this.#nextRetryAt = null;
    const monitor = new LivenessMonitor({
      pinger: conn,
      policy: this.#settings.keepalive,
      onStale: ({ deadlineMs }) => {
        this.#deps.bus.publish({ type: 'account.stale', account: this.id, deadlineMs });
        conn.terminate({ code: null, name: 'stale', message: `keepalive not answered within ${deadlineMs} ms` });
      },
      ...(this.#deps.observeProbeRtt ? { onRtt: (ms: number) => this.#deps.observeProbeRtt!(this.id, ms) } : {}),
      ...(this.#deps.probeSpread ? { spread: this.#deps.probeSpread } : {}),
    });
    this.#liveness = monitor;
    monitor.start();
    // Staying open for the whole flap window clears `degraded` (and tells the operator).
    const openedAt = Date.now();
    this.#stableTimer = setTimeout(() => {
      if (this.#flap.recordStable(openedAt, Date.now())) {
        this.#degraded = null;
        this.#deps.bus.publish({ type: 'account.recovered', account: this.id });
      }
    }, this.#settings.flap.windowMs);
    this.#stableTimer.unref();
    if (this.#pairing) {
      const req = this.#pairing;
      this.#pairing = null;
      // The pairing's 515 was the expected last step, not the start of a loop.
      this.#restarts.reset();
      req.onEvent({ type: 'paired', jid });
      this.#deps.bus.publish({ type: 'account.paired', account: this.id, jid, ...(req.requestId ? { requestId: req.requestId } : {}) });
    }
    this.#setState('open', { jid });
  }

  /** The open connection's close, with its bookkeeping done as it happens. */
  #untilClosed(conn: WaConnection): Promise<ClassifiedClose> {
    return new Promise((resolve) => {
      let done = false;
      conn.onEvent((e) => {
        if (e.type !== 'close' || done) return;
        done = true;
        if (this.#stableTimer) clearTimeout(this.#stableTimer);
        this.#stableTimer = null;
        this.#liveness?.stop();
        this.#lastTraffic = this.#liveness?.traffic ?? null;
        this.#liveness = null;
        this.#connectedSince = null;
        if (this.#conn === conn) this.#conn = null;
        const action = this.#actionFor(e.close);
        this.#recordClose(e.close, action);
        resolve({ close: e.close, action });
      });
    });
  }

  /** Waits for the open connection to close; null when the loop was aborted (also before this call). */
  #closed(opened: Opened, signal: AbortSignal): Promise<ClassifiedClose | null> {
    return new Promise((resolve) => {
      const removeAbort = onAbort(signal, () => resolve(null));
      void opened.closed.then((ended) => {
        removeAbort();
        resolve(signal.aborted ? null : ended);
      });
    });
  }

  #recordClose(close: CloseInfo, action: CloseAction): void {
    const at = new Date();
    // How long since the last frame, and how late our own loop ran in the minute before: a close
    // after a local stall is not the server's doing, whatever its code. (Frames the stall held
    // back are read just before the close, so the stall shows in the loop delay, not the gap.)
    const lastFrame = (this.#liveness?.traffic ?? this.#lastTraffic)?.lastReceivedAt ?? null;
    const local = {
      sinceLastFrameMs: lastFrame !== null ? at.getTime() - lastFrame : null,
      loopDelayMaxMs: this.#deps.loopDelaySince?.(at.getTime() - CLOSE_LOOP_WINDOW_MS) ?? null,
    };
    this.#lastClose = { ...close, at: at.toISOString(), ...local };
    const key = close.code !== null ? String(close.code) : close.name;
    this.#closesByCode[key] = (this.#closesByCode[key] ?? 0) + 1;
    this.#deps.bus.publish({ type: 'account.close', account: this.id, code: close.code, name: close.name, message: close.message, ...local });
    // Our own stops and an immediate 515 (a normal protocol step, e.g. right after pairing) are
    // not flapping; a 515 that had to back off is.
    if (close.name === 'local' || action.kind === 'reconnect_now') return;
    const report = this.#flap.recordClose(at.getTime(), close.code ?? close.name);
    if (report) {
      this.#degraded = { ...report, since: at.toISOString() };
      this.#deps.bus.publish({ type: 'account.degraded', account: this.id, ...report });
      this.#deps.log.warn({ account: this.id, ...report }, 'account is flapping');
    }
  }

  async #backoff(signal: AbortSignal): Promise<void> {
    const delay = backoffDelay(this.#settings.reconnect, this.#failures, this.#deps.random);
    this.#nextRetryAt = new Date(Date.now() + delay);
    this.#deps.bus.publish({ type: 'account.backoff', account: this.id, failures: this.#failures, delayMs: delay });
    try {
      await abortableSleep(delay, signal);
    } finally {
      this.#nextRetryAt = null;
    }
  }

  #enterTerminal(t: TerminalClose): void {
    if (t.state === 'needs_pairing') {
      this.#deps.connector.archiveCreds(this.id, `${t.close.code ?? ''} ${t.close.name}`.trim());
      this.#authCreatedAt = undefined;
    }
    this.#failPairing(`pairing ended: ${t.close.name}`);
    this.#setState(t.state, { close: t.close });
  }

  #endConnection(close: CloseInfo): void {
    if (this.#stableTimer) clearTimeout(this.#stableTimer);
    this.#liveness?.stop();
    this.#conn?.terminate(close);
  }

  #pairEvent(e: PairEvent): void {
    const req = this.#pairing;
    if (!req) return;
    req.onEvent(e);
    if (e.type === 'qr' || e.type === 'code') {
      this.#deps.bus.publish({ type: `account.pairing.${e.type}`, account: this.id, ...(req.requestId ? { requestId: req.requestId } : {}) });
    }
  }

  #failPairing(message: string): void {
    const req = this.#pairing;
    if (!req) return;
    this.#pairing = null;
    req.onEvent({ type: 'error', message });
  }

  #setState(state: AccountState, detail: Record<string, unknown> = {}): void {
    // A repeated `reconnecting` is published only when it carries a new close.
    if (state === this.#state && !(state === 'reconnecting' && detail.close)) return;
    const previous = this.#state;
    this.#state = state;
    if (previous !== state) this.#since = new Date();
    this.#deps.bus.publish({ type: 'account.state', account: this.id, state, previous, ...detail });
    this.#deps.log.info({ account: this.id, state, previous, ...detail }, 'account state');
  }
}

/** Whether two keys hold the same values, in order (by identity). */
function sameValues(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
