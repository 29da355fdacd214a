// Application-layer keepalive and the active probe. Every interval the runner's connection sends
// a ping IQ that the server must answer within a deadline. The ping itself keeps the server's
// idle timer from firing (ws-level ping frames do not count there); a missed deadline means the
// socket is open but deaf or black-holed, and the connection is ended at once as `stale` instead
// of waiting for TCP or the ws library's 30 s close.
//
// The deadline counts only time the event loop could have read the answer. Heavy work of any
// account (a large group's encryption, a first login's key generation) can hold the one loop for
// longer than a deadline; the answers of other accounts' probes then wait, read, in the kernel's
// buffers. So a deadline timer that fires late gives the socket the time the loop was away, and
// before judging, one turn of I/O to read what arrived meanwhile: our stall is never blamed on
// the socket (docs/scale.md).

/** What the monitor needs from a connection: one method. */
export interface Pinger {
  /**
   * Sends the keepalive IQ; resolves when answered, rejects when the connection fails or after
   * `waitMs` (a backstop: the monitor keeps the deadline itself, see probeWaitMs).
   */
  ping(waitMs: number): Promise<void>;
}

/** A deadline timer that fires at least this late found the loop stalled. */
export const STALL_MIN_MS = 25;
/** The time a probe may be given back for stalls of the loop, as a multiple of its deadline. */
export const STALL_CREDIT_FACTOR = 4;

/** How long the pinger may wait for an answer: the deadline with every stall credit, and a second. */
export function probeWaitMs(deadlineMs: number): number {
  return deadlineMs * (1 + STALL_CREDIT_FACTOR) + 1000;
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
  /** Runs fn after the I/O that is ready now has been read (setImmediate); defaults to setTimeout 0. */
  afterIo?: (fn: () => void) => void;
}

/**
 * Probes go at a random point of the last tenth of the interval, never later than it. Without
 * that, probes that a stall made fire in the same turn were all scheduled again from the same
 * moment and stayed together: at a thousand accounts, runs of 10-25 probes held the loop for
 * that many milliseconds, over and over.
 */
export const PROBE_SPREAD = 0.1;

/** The real timers. */
export const REAL_TIMERS: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  now: () => Date.now(),
  afterIo: (fn) => void setImmediate(fn),
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
  readonly #spread: (() => number) | undefined;
  /**
   * `spread`: a fraction in [0, 1) drawn for each probe, how early in the last tenth of the
   * interval it goes (PROBE_SPREAD; the daemon passes Math.random). Absent: on the interval.
   */
  constructor(opts: { pinger: Pinger; policy: KeepalivePolicy; onStale: (detail: { deadlineMs: number }) => void; onRtt?: (ms: number) => void; timers?: Timers; spread?: () => number }) {
    this.#onRtt = opts.onRtt;
    this.#spread = opts.spread;
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
    const interval = this.#policy.intervalMs;
    const early = this.#spread ? Math.floor(interval * PROBE_SPREAD * this.#spread()) : 0;
    this.#timer = this.#timers.setTimeout(() => void this.#probe(), interval - early);
  }

  async #probe(): Promise<void> {
    if (this.#stopped) return;
    const sentAt = this.#timers.now();
    const deadlineMs = this.#policy.probeDeadlineMs;
    this.traffic.probesSent++;
    this.noteSent();
    const answer = this.#pinger.ping(probeWaitMs(deadlineMs)).then(
      () => 'answered' as const,
      () => 'failed' as const,
    );
    const deadline = this.#deadline(deadlineMs);
    const verdict = await Promise.race([answer, deadline.passed]);
    deadline.cancel();
    if (this.#stopped) return;
    if (verdict === 'answered') {
      this.traffic.lastProbeRttMs = this.#timers.now() - sentAt;
      this.#onRtt?.(this.traffic.lastProbeRttMs);
      this.#schedule();
      return;
    }
    this.traffic.probesMissed++;
    this.stop();
    this.#onStale({ deadlineMs });
  }

  /**
   * Resolves when `ms` of time the loop was free to read have passed: a timer that fired late
   * (the loop was stalled) is set again for the time it was late, up to STALL_CREDIT_FACTOR
   * deadlines in all; the last one waits one turn of I/O before it resolves.
   */
  #deadline(ms: number): { passed: Promise<'deadline'>; cancel: () => void } {
    let handle: unknown = null;
    let cancelled = false;
    let credit = 0;
    const passed = new Promise<'deadline'>((resolve) => {
      const arm = (wait: number) => {
        const due = this.#timers.now() + wait;
        handle = this.#timers.setTimeout(() => {
          handle = null;
          if (cancelled) return;
          const late = this.#timers.now() - due;
          if (late >= STALL_MIN_MS && credit + late <= ms * STALL_CREDIT_FACTOR) {
            credit += late;
            arm(late);
            return;
          }
          const afterIo = this.#timers.afterIo ?? ((fn: () => void) => void this.#timers.setTimeout(fn, 0));
          afterIo(() => resolve('deadline'));
        }, wait);
      };
      arm(ms);
    });
    return {
      passed,
      cancel: () => {
        cancelled = true;
        if (handle !== null) this.#timers.clearTimeout(handle);
        handle = null;
      },
    };
  }
}
