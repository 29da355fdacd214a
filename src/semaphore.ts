// A counting semaphore whose waits honour an AbortSignal. The supervisor caps connection attempts
// in flight with one (when the network blips every account drops at once; without a cap 200
// accounts would handshake and upload prekeys at the same moment), and the send gate caps the
// messages being built and written at once across accounts.

/** A counting semaphore whose waits honour an AbortSignal. */
export class Semaphore {
  #limit: number;
  #inUse = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`semaphore limit must be a positive integer, got ${limit}`);
    this.#limit = limit;
  }

  /** Slots held now. */
  get inUse(): number {
    return this.#inUse;
  }

  /** Waiters for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Changes the limit (config reload); waiters are let in when it grows. */
  setLimit(limit: number): void {
    this.#limit = limit;
    this.#drain();
  }

  /** Waits for a slot; the returned function gives it back (calling it twice is harmless). */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.#inUse >= this.#limit) {
      await new Promise<void>((resolve, reject) => {
        const grant = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          const i = this.#waiting.indexOf(grant);
          if (i >= 0) this.#waiting.splice(i, 1);
          reject(signal!.reason);
        };
        this.#waiting.push(grant);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    } else {
      this.#inUse++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inUse--;
      this.#drain();
    };
  }

  #drain(): void {
    while (this.#inUse < this.#limit && this.#waiting.length > 0) {
      this.#inUse++;
      this.#waiting.shift()!();
    }
  }
}
