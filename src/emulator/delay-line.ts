/**
 * The network between the server and a client, in the server-to-client direction: every frame
 * the emulator sends is released `latencyMs` after it was sent, never before a frame sent
 * earlier (so lowering the latency while frames are in flight cannot reorder them).
 *
 * Real servers are tens of milliseconds away; with no delay at all the emulator can answer
 * before a client has finished its own work on the previous step (Baileys 7.0.0-rc.9 derives its
 * transport keys asynchronously after sending ClientFinish and drops a frame that arrives first).
 * Time is read from the global `performance` clock (monotonic; faked by test clocks).
 */

/**
 * Default latency of the frames the emulator sends: each request/response round trip pays it
 * once, about what a client near a WhatsApp edge server sees, and well above what a client
 * needs to be ready for the next frame (docs/emulator.md, "Latency").
 */
export const DEFAULT_LATENCY_MS = 25;

/** The largest latency accepted (by the options, the CLI and the control API). */
export const MAX_LATENCY_MS = 60_000;

interface InFlight {
  due: number;
  release: () => void;
}

/** An in-order delay line with a latency that may change at any time. */
export class DelayLine {
  private readonly queue: InFlight[] = [];
  private timer: NodeJS.Timeout | null = null;
  private lastDue = 0;

  /** `latencyMs` is read for every item, so a new value applies to the next frame sent. */
  constructor(private readonly latencyMs: () => number) {}

  /** Frames still in flight. */
  get pending(): number {
    return this.queue.length;
  }

  /** Runs `release` after the latency (at once with latency 0 and nothing in flight). */
  push(release: () => void): void {
    const latency = this.latencyMs();
    if (latency <= 0 && this.queue.length === 0) {
      release();
      return;
    }
    const due = Math.max(performance.now() + latency, this.lastDue);
    this.lastDue = due;
    this.queue.push({ due, release });
    this.schedule();
  }

  /** Drops everything in flight (the connection is gone). */
  clear(): void {
    this.queue.length = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (this.timer || this.queue.length === 0) return;
    const wait = Math.max(0, this.queue[0]!.due - performance.now());
    this.timer = setTimeout(() => this.drain(), Math.ceil(wait));
  }

  private drain(): void {
    this.timer = null;
    const now = performance.now();
    // release() may clear the line (a close frame that ends the connection)
    while (this.queue.length > 0 && this.queue[0]!.due <= now) this.queue.shift()!.release();
    this.schedule();
  }
}
