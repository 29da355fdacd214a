// The cap on connection attempts in flight, adapted to how the event loop copes. Each attempt
// costs the loop (a TLS and Noise handshake, login, key uploads after a pairing); a restart of a
// daemon with a thousand accounts would otherwise let a fixed number of them at a time make the
// loop late for every open socket's keepalive. Every second: a late loop halves the cap, a timely
// one lets it grow by half again, between 1 and the ceiling (`reconnect.maxConcurrent`).
//
// "Late" is measured against the probes it would endanger: a quarter of the shortest keepalive
// deadline of any account (750 ms with the default 3 s), never below 100 ms nor above 1 s. A
// probe's deadline also gives back time the loop was stalled (liveness.ts), so the target keeps
// answers timely rather than merely counted.

/** The target when no account sets a shorter deadline: a second's largest loop delay above it halves the cap. */
export const LOOP_DELAY_TARGET_MS = 100;
/** The most the target may be, whatever the deadlines. */
export const LOOP_DELAY_TARGET_MAX_MS = 1000;

/** The loop delay target for accounts whose shortest probe deadline is `shortestDeadlineMs` (null: no account). */
export function loopDelayTargetMs(shortestDeadlineMs: number | null): number {
  if (shortestDeadlineMs === null) return LOOP_DELAY_TARGET_MS;
  return Math.min(LOOP_DELAY_TARGET_MAX_MS, Math.max(LOOP_DELAY_TARGET_MS, Math.floor(shortestDeadlineMs / 4)));
}

export class AdaptiveCap {
  #ceiling: number;
  #cap: number;
  readonly #apply: (cap: number) => void;

  constructor(opts: { ceiling: number; initial?: number; apply: (cap: number) => void }) {
    this.#ceiling = opts.ceiling;
    this.#cap = Math.max(1, Math.min(opts.ceiling, opts.initial ?? opts.ceiling));
    this.#apply = opts.apply;
    this.#apply(this.#cap);
  }

  get cap(): number {
    return this.#cap;
  }

  get ceiling(): number {
    return this.#ceiling;
  }

  /** A new ceiling (config reload); the cap stays below it. */
  setCeiling(ceiling: number): void {
    this.#ceiling = ceiling;
    this.#set(Math.min(this.#cap, ceiling));
  }

  /** One second's largest event-loop delay, in ms, against the target (loopDelayTargetMs). */
  observe(loopDelayMaxMs: number, targetMs = LOOP_DELAY_TARGET_MS): void {
    if (loopDelayMaxMs > targetMs) this.#set(Math.max(1, Math.floor(this.#cap / 2)));
    else this.#set(Math.min(this.#ceiling, Math.max(this.#cap + 1, Math.floor(this.#cap * 1.5))));
  }

  #set(cap: number): void {
    if (cap === this.#cap) return;
    this.#cap = cap;
    this.#apply(cap);
  }
}
