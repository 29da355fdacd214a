// Reconnect delays: exponential with full jitter and a cap. Full jitter (a uniform draw between 0
// and the exponential ceiling) spreads many accounts that dropped together across the whole
// window, where "ceiling ± a bit" would bring them back in a herd.

/** Backoff settings; `accounts[].reconnect` and the top-level `reconnect` use this shape. */
export interface BackoffPolicy {
  /** Ceiling of the first delay. */
  initialMs: number;
  /** Largest ceiling. */
  maxMs: number;
  /** Growth of the ceiling per failed attempt. */
  factor: number;
}

/** Defaults: 1 s, doubling, capped at 60 s. */
export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 1000, maxMs: 60_000, factor: 2 };

/** The ceiling for the n-th consecutive failure (n from 1). */
export function backoffCeiling(policy: BackoffPolicy, failures: number): number {
  const n = Math.max(1, failures);
  return Math.min(policy.maxMs, policy.initialMs * policy.factor ** (n - 1));
}

/** A full-jitter delay for the n-th consecutive failure; `random` returns [0, 1). */
export function backoffDelay(policy: BackoffPolicy, failures: number, random: () => number = Math.random): number {
  return Math.floor(random() * backoffCeiling(policy, failures));
}
