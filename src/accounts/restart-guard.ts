// 515 (restart required) asks for an immediate reconnect, and right after pairing that is the
// normal last step. A server that answers every connect with 515 would turn it into a tight loop
// that never backs off and never counts as flapping, so only a 515 that comes a whole window after
// the previous one reconnects at once; the others are handled like any other close (backoff, flap
// detection).

/**
 * A 515 within this long of the previous 515 backs off instead of reconnecting at once. As long as
 * the default backoff cap, so a server that keeps answering 515 gets one immediate reconnect and
 * then only backoff, however long the backoff grows.
 */
export const RESTART_WINDOW_MS = 60_000;

/** Decides, per 515, whether it may reconnect at once. */
export class RestartGuard {
  readonly windowMs: number;
  #lastAt: number | null = null;

  constructor(windowMs = RESTART_WINDOW_MS) {
    this.windowMs = windowMs;
  }

  /** Records a 515 at `now`; true when it may reconnect at once (no other 515 within the window). */
  allowImmediate(now: number): boolean {
    const immediate = this.#lastAt === null || now - this.#lastAt >= this.windowMs;
    this.#lastAt = now;
    return immediate;
  }

  /** Forgets earlier 515s: a pairing that completed, whose 515 was the expected step. */
  reset(): void {
    this.#lastAt = null;
  }
}
