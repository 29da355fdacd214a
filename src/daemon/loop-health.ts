// How late the daemon's event loop runs. Every socket, keepalive probe and timer of every account
// shares this one loop, so a stall of it (a long synchronous task, swapping, a paused process)
// looks from the server like a client that went quiet: a 408 or a `stale` close that WhatsApp
// did not cause. Since start: perf_hooks.monitorEventLoopDelay (never reset: a reset drops the
// sample after it, which would be the stall). The last minute, and the largest delay since any
// moment within it: a beat timer every 100 ms, whose lateness goes into one-second buckets; the
// beat also shows a stall that is only now ending (after a long pause the loop handles waiting
// I/O, such as the close a stall caused, before it runs any timer).
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** Event-loop delay figures, in milliseconds. */
export interface LoopDelay {
  p99Ms: number;
  maxMs: number;
}

export interface LoopHealthSnapshot {
  /** The last ten seconds (the second going on included): what the loop is like now. */
  lastTenSeconds: LoopDelay;
  lastMinute: LoopDelay;
  sinceStart: LoopDelay;
}

/** Default `eventLoop.alertMs`: a delay this long within the last minute raises `event_loop_stalled`. */
export const DEFAULT_LOOP_ALERT_MS = 2000;

const BUCKET_MS = 1000;
const BUCKETS = 60;
/** The beat's period. */
const BEAT_MS = 100;

interface Bucket {
  /** When the bucket was closed (epoch ms); it covers the BUCKET_MS before. */
  endedAt: number;
  /** Each beat's lateness in ms (about ten a second: a minute is some 600 numbers, cheaper to sort than histograms are to merge). */
  samples: number[];
  /** The largest of them (0 when none). */
  max: number;
}

export class LoopHealth {
  readonly #sinceStart: IntervalHistogram;
  readonly #buckets: Bucket[] = [];
  readonly #onTick: ((t: LoopTick) => void) | undefined;
  readonly #now: () => number;
  #current: Bucket = { endedAt: 0, samples: [], max: 0 };
  #timer: NodeJS.Timeout | null = null;
  #beat: NodeJS.Timeout | null = null;
  #lastBeat = 0;
  /** The snapshot since the last beat or tick (status asks often). */
  #snapshot: LoopHealthSnapshot | null = null;

  constructor(opts: { onTick?: (t: LoopTick) => void; now?: () => number } = {}) {
    this.#sinceStart = monitorEventLoopDelay({ resolution: 10 });
    this.#onTick = opts.onTick;
    this.#now = opts.now ?? Date.now;
  }

  start(): void {
    this.#sinceStart.enable();
    this.#lastBeat = this.#now();
    this.#beat = setInterval(() => this.#onBeat(), BEAT_MS);
    this.#beat.unref();
    this.#timer = setInterval(() => this.tick(), BUCKET_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#beat) clearInterval(this.#beat);
    this.#timer = null;
    this.#beat = null;
    this.#sinceStart.disable();
  }

  /** Closes the current bucket (the timer does this every second; tests call it directly). */
  tick(): void {
    const closed = this.#current;
    closed.endedAt = this.#now();
    this.#buckets.push(closed);
    if (this.#buckets.length > BUCKETS) this.#buckets.shift();
    this.#current = { endedAt: 0, samples: [], max: 0 };
    this.#snapshot = null;
    if (!this.#onTick) return;
    // The maxima only, not the percentiles: this runs every second whether anyone asks or not.
    let minuteMax = 0;
    for (const b of this.#buckets) minuteMax = Math.max(minuteMax, b.max);
    this.#onTick({ lastMinuteMaxMs: round(minuteMax), lastSecondMaxMs: round(closed.max) });
  }

  /** The figures now; the same object until the next beat (100 ms) or bucket. */
  snapshot(): LoopHealthSnapshot {
    this.#snapshot ??= this.#measure();
    return this.#snapshot;
  }

  #measure(): LoopHealthSnapshot {
    const tenFrom = this.#buckets.length - 9;
    const ten = this.#buckets.slice(Math.max(0, tenFrom)).flatMap((b) => b.samples);
    ten.push(...this.#current.samples);
    const minute = this.#buckets.slice(0, Math.max(0, tenFrom)).flatMap((b) => b.samples);
    minute.push(...ten);
    return {
      lastTenSeconds: delayOf(ten),
      lastMinute: delayOf(minute),
      sinceStart: this.#sinceStart.count === 0 ? { p99Ms: 0, maxMs: 0 } : { p99Ms: round(this.#sinceStart.percentile(99) / 1e6), maxMs: round(this.#sinceStart.max / 1e6) },
    };
  }

  /**
   * The largest delay seen since `since` (epoch ms), to the second: the buckets that ended after
   * it, the one still open, and a stall going on now. Within the last minute only; 0 when
   * nothing was measured.
   */
  maxSince(since: number): number {
    let max = this.#current.max;
    for (const b of this.#buckets) if (b.endedAt > since) max = Math.max(max, b.max);
    if (this.#beat) max = Math.max(max, this.#lateness());
    return round(max);
  }

  #onBeat(): void {
    const late = this.#lateness();
    this.#lastBeat = this.#now();
    this.#current.samples.push(late);
    this.#current.max = Math.max(this.#current.max, late);
    this.#snapshot = null;
  }

  /** How much later than due the next beat is, in ms (0 while it is not due). */
  #lateness(): number {
    return Math.max(0, this.#now() - this.#lastBeat - BEAT_MS);
  }
}

/** What the ticks tell their listener: the largest delay of the last minute, and of the second just closed. */
export interface LoopTick {
  lastMinuteMaxMs: number;
  lastSecondMaxMs: number;
}

/** The 99th percentile (nearest rank) and the largest of beat latenesses, in ms. */
export function delayOf(samples: number[]): LoopDelay {
  if (samples.length === 0) return { p99Ms: 0, maxMs: 0 };
  samples.sort((a, b) => a - b);
  return { p99Ms: round(samples[Math.ceil(samples.length * 0.99) - 1]!), maxMs: round(samples[samples.length - 1]!) };
}

/** To a tenth of a millisecond. */
function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
