// The cap on connection attempts in flight, adapted to how the event loop copes. Each attempt
// costs the loop (a TLS and Noise handshake, login, key uploads after a pairing); a restart of a
// daemon with a thousand accounts would otherwise let a fixed number of them at a time make the
// loop late for every open socket's keepalive. Every second: a late loop halves the cap, a timely
// one lets it grow by half again, between 1 and the ceiling (`reconnect.maxConcurrent`).

/** A second's largest loop delay above this halves the cap. */
export const LOOP_DELAY_TARGET_MS = 100;

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

  /** One second's largest event-loop delay, in ms. */
  observe(loopDelayMaxMs: number): void {
    if (loopDelayMaxMs > LOOP_DELAY_TARGET_MS) this.#set(Math.max(1, Math.floor(this.#cap / 2)));
    else this.#set(Math.min(this.#ceiling, Math.max(this.#cap + 1, Math.floor(this.#cap * 1.5))));
  }

  #set(cap: number): void {
    if (cap === this.#cap) return;
    this.#cap = cap;
    this.#apply(cap);
  }
}
