// Application-layer keepalive and the active probe. Every interval the runner's connection sends
// a ping IQ that the server must answer within a deadline. The ping itself keeps the server's
// idle timer from firing (ws-level ping frames do not count there); a missed deadline means the
// socket is open but deaf or black-holed, and the connection is ended at once as `stale` instead
// of waiting for TCP or the ws library's 30 s close.

/** What the monitor needs from a connection: one method. */
export interface Pinger {
  /** Sends the keepalive IQ; resolves when answered, rejects when not answered within deadlineMs. */
  ping(deadlineMs: number): Promise<void>;
}

/** Keepalive settings (`keepalive` in the config). */
export interface KeepalivePolicy {
  /** How often to send the keepalive IQ; 0 disables it (tests use that to show what it saves). */
  intervalMs: number;
  /** The server's idle window the keepalive must stay under (WhatsApp: about 15 minutes). */
  idleWindowMs: number;
  /** How long an IQ may go unanswered before the socket counts as stale. */
  probeDeadlineMs: number;
}

/**
 * Defaults: a ping every 10 s answered within 3 s, under a 15-minute idle window. A dead socket
 * is found within 13 s at worst, so with the first backoff (≤ 1 s) and a login it is open again
 * within about 15 s. A ping is one small IQ: about 8,600 a day per account.
 */
export const DEFAULT_KEEPALIVE: KeepalivePolicy = { intervalMs: 10_000, idleWindowMs: 15 * 60_000, probeDeadlineMs: 3000 };

/** Timer functions, injectable for fake clocks. */
export interface Timers {
  setTimeout: (fn: () => void, ms: number) => unknown;
  clearTimeout: (handle: unknown) => void;
  now: () => number;
}

/** The real timers. */
export const REAL_TIMERS: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  now: () => Date.now(),
};

/** Per-connection record of application traffic, shown in status. */
export interface TrafficRecord {
  /** The last keepalive probe sent (probes only; kept under this name for compatibility). */
  lastSentAt: number | null;
  /** The last stanza of any kind sent: probe, message, receipt, Baileys' own iqs. */
  lastStanzaSentAt: number | null;
  lastReceivedAt: number | null;
  /** Largest gap seen between two received application stanzas (or open and the first one). */
  largestSilentGapMs: number;
  probesSent: number;
  probesMissed: number;
  lastProbeRttMs: number | null;
}

/**
 * Runs the keepalive for one open connection. Start it on `open`, stop it on close. It calls
 * `onStale` at most once.
 */
export class LivenessMonitor {
  readonly #pinger: Pinger;
  #policy: KeepalivePolicy;
  readonly #timers: Timers;
  readonly #onStale: (detail: { deadlineMs: number }) => void;
  #timer: unknown = null;
  #stopped = false;
  readonly traffic: TrafficRecord;

  readonly #onRtt: ((ms: number) => void) | undefined;
  constructor(opts: { pinger: Pinger; policy: KeepalivePolicy; onStale: (detail: { deadlineMs: number }) => void; onRtt?: (ms: number) => void; timers?: Timers }) {
    this.#onRtt = opts.onRtt;
    this.#pinger = opts.pinger;
    this.#policy = opts.policy;
    this.#timers = opts.timers ?? REAL_TIMERS;
    this.#onStale = opts.onStale;
    const now = this.#timers.now();
    this.traffic = { lastSentAt: null, lastStanzaSentAt: null, lastReceivedAt: now, largestSilentGapMs: 0, probesSent: 0, probesMissed: 0, lastProbeRttMs: null };
  }

  /** Starts the ping cycle (no-op when the interval is 0). */
  start(): void {
    if (this.#policy.intervalMs > 0) this.#schedule();
  }

  /** Applies a new keepalive policy (config reload) from the next probe on, without touching the connection. */
  setPolicy(policy: KeepalivePolicy): void {
    const wasOff = this.#policy.intervalMs === 0;
    this.#policy = policy;
    if (this.#stopped) return;
    if (this.#timer !== null) {
      this.#timers.clearTimeout(this.#timer);
      this.#timer = null;
      if (policy.intervalMs > 0) this.#schedule();
    } else if (wasOff && policy.intervalMs > 0) this.#schedule();
  }

  /** Stops the cycle; a ping in flight is ignored when it settles. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) this.#timers.clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** Records an application stanza received from the server (any, not only ping answers). */
  noteReceived(): void {
    const now = this.#timers.now();
    if (this.traffic.lastReceivedAt !== null) {
      this.traffic.largestSilentGapMs = Math.max(this.traffic.largestSilentGapMs, now - this.traffic.lastReceivedAt);
    }
    this.traffic.lastReceivedAt = now;
  }

  /** Records a keepalive probe sent (a stanza too). */
  noteSent(): void {
    this.traffic.lastSentAt = this.#timers.now();
    this.traffic.lastStanzaSentAt = this.traffic.lastSentAt;
  }

  /** Records a stanza of any kind sent to the server (the connection reports every one it writes). */
  noteStanzaSent(): void {
    this.traffic.lastStanzaSentAt = this.#timers.now();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#timers.setTimeout(() => void this.#probe(), this.#policy.intervalMs);
  }

  async #probe(): Promise<void> {
    if (this.#stopped) return;
    const sentAt = this.#timers.now();
    this.traffic.probesSent++;
    this.noteSent();
    try {
      await this.#pinger.ping(this.#policy.probeDeadlineMs);
      if (this.#stopped) return;
      this.traffic.lastProbeRttMs = this.#timers.now() - sentAt;
      this.#onRtt?.(this.traffic.lastProbeRttMs);
      this.#schedule();
    } catch {
      if (this.#stopped) return;
      this.traffic.probesMissed++;
      this.stop();
      this.#onStale({ deadlineMs: this.#policy.probeDeadlineMs });
    }
  }
}
