/**
 * Turns of the event loop handed out one at a time, in order. Chains of promises that resolve at
 * once (Signal work: encrypting for a device, a phone decrypting) never yield to I/O; when many
 * are started together, letting them all go in the same turn runs them back to back and holds
 * every socket's answers for as long as all of them take. Each waits for a turn of its own
 * instead; between two turns the loop reads and answers I/O. Used by the daemon's key-read slices
 * (wa/loop-slices.ts) and by the emulator's deliveries.
 */
export class Turns {
  private readonly queue: Array<() => void> = [];
  private pumping = false;

  /** Callers waiting for a turn. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Resolves at the next free turn of the loop. */
  next(): Promise<void> {
    return new Promise((resolve) => {
      this.queue.push(resolve);
      this.pump();
    });
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    const step = (): void => {
      // The released work runs in the microtasks right after this callback; set from inside the
      // check phase, the next step runs after the next poll for I/O.
      this.queue.shift()?.();
      if (this.queue.length > 0) setImmediate(step);
      else this.pumping = false;
    };
    setImmediate(step);
  }
}
