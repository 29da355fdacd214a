/**
 * Turns of the event loop handed out one at a time, in order. The emulator plays a server and the
 * phones of every peer in one process: when a thousand accounts send at once, each delivery is a
 * chain of promises (a phone decrypting, a session being set up) that never yields, and letting
 * them all go in one turn would hold every connection's answers (pings included) for seconds.
 * A delivery waits for its turn first; between two turns the loop reads and answers I/O.
 */
export class Turns {
  private readonly waiting: Array<() => void> = [];
  private pumping = false;

  /** Resolves at the next free turn of the loop. */
  next(): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.pump();
    });
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    const step = (): void => {
      // The released work runs in the microtasks right after this callback; set from inside the
      // check phase, the next step runs after the next poll for I/O.
      this.waiting.shift()?.();
      if (this.waiting.length > 0) setImmediate(step);
      else this.pumping = false;
    };
    setImmediate(step);
  }
}
