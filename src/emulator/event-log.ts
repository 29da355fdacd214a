/**
 * Things that happen to connections and accounts but are not stanzas: connects, closes (and
 * who closed), faults applied, pairings, unhandled iqs. Bounded like the timeline.
 */

/** One emulator event. */
export interface EmulatorEvent {
  at: number;
  phone: string | null;
  session: number | null;
  text: string;
}

/** A bounded in-memory list of events, also forwarded to a log sink. */
export class EventLog {
  private readonly list: EmulatorEvent[] = [];
  private readonly waiters = new Set<(event: EmulatorEvent) => void>();

  constructor(
    private readonly sink: (event: EmulatorEvent) => void = () => {},
    private readonly maxEntries = 10_000,
  ) {}

  /** Records an event. */
  add(phone: string | null, session: number | null, text: string): void {
    const event = { at: Date.now(), phone, session, text };
    this.list.push(event);
    if (this.list.length > this.maxEntries) this.list.shift();
    this.sink(event);
    for (const w of [...this.waiters]) w(event);
  }

  /** Resolves with the first event from now on that matches (rejects after timeoutMs). */
  waitFor(pred: (event: EmulatorEvent) => boolean, timeoutMs = 10_000): Promise<EmulatorEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`no matching emulator event within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = (event: EmulatorEvent) => {
        if (!pred(event)) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(event);
      };
      this.waiters.add(check);
    });
  }

  /** Events, optionally only those of one account. */
  entries(phone?: string): EmulatorEvent[] {
    return phone === undefined ? [...this.list] : this.list.filter((e) => e.phone === phone);
  }
}
