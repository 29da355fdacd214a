// Flap detection: N closes within a window make an account `degraded`, reported once until it
// recovers. When the gaps between those closes are regular (the seeds' 15-minute 408 metronome),
// the report says so and gives the interval: a regular interval points at an idle timeout
// somewhere, not at a bad network.

/** Flap settings. */
export interface FlapPolicy {
  /** How many closes within the window count as flapping. */
  closes: number;
  windowMs: number;
}

/** Defaults: 4 closes within an hour (a 15-minute idle-timeout metronome trips it in 45 minutes). */
export const DEFAULT_FLAP: FlapPolicy = { closes: 4, windowMs: 60 * 60_000 };

/** Reported once when an account starts flapping. */
export interface FlapReport {
  closes: number;
  windowMs: number;
  /** Median gap between the closes, when the gaps are regular (each within 10 % of it). */
  regularIntervalMs: number | null;
  codes: Array<number | string>;
}

/** Counts closes per account; `recordClose` returns a report only on the transition into flapping. */
export class FlapDetector {
  readonly #policy: FlapPolicy;
  #closes: Array<{ at: number; code: number | string }> = [];
  #flapping = false;

  constructor(policy: FlapPolicy = DEFAULT_FLAP) {
    this.#policy = policy;
  }

  /** True while the account is considered flapping. */
  get flapping(): boolean {
    return this.#flapping;
  }

  /** Records a close; returns a report when this close makes the account flap. */
  recordClose(at: number, code: number | string): FlapReport | null {
    this.#closes.push({ at, code });
    this.#closes = this.#closes.filter((c) => at - c.at <= this.#policy.windowMs);
    if (this.#flapping || this.#closes.length < this.#policy.closes) return null;
    this.#flapping = true;
    return {
      closes: this.#closes.length,
      windowMs: this.#policy.windowMs,
      regularIntervalMs: regularInterval(this.#closes.map((c) => c.at)),
      codes: this.#closes.map((c) => c.code),
    };
  }

  /**
   * Called while the connection is open; clears flapping once the account has stayed up longer
   * than the window. Returns true on that transition.
   */
  recordStable(openSince: number, now: number): boolean {
    if (!this.#flapping || now - openSince < this.#policy.windowMs) return false;
    this.#flapping = false;
    this.#closes = [];
    return true;
  }
}

/** The median gap when every gap is within 10 % of it (needs at least two gaps), else null. */
export function regularInterval(times: number[]): number | null {
  if (times.length < 3) return null;
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  const sorted = [...gaps].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  if (median <= 0) return null;
  return gaps.every((g) => Math.abs(g - median) <= median * 0.1) ? median : null;
}
