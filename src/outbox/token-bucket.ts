// Pacing: a token bucket per account, so a replay after a long outage trickles out at the
// configured rate instead of bursting (a burst from a fresh connection is what gets numbers
// flagged), plus a cap on first messages to new chats per hour.

/** Pacing settings (`pacing` in the config, overridable per account). */
export interface PacingPolicy {
  enabled: boolean;
  perMinute: number;
  newChatsPerHour: number;
  jitterMs: number;
}

/** Defaults: 20 messages a minute, bursts of at most 3, up to 1 s of jitter, 30 new chats an hour. */
export const DEFAULT_PACING: PacingPolicy = { enabled: true, perMinute: 20, newChatsPerHour: 30, jitterMs: 1000 };

/** The largest burst the bucket allows. */
export const BUCKET_CAPACITY = 3;

/**
 * A token bucket with a clock passed in, so it is testable without timers. Kept as a
 * "theoretical arrival time" (GCRA): the bucket is full when `tat <= now`, each send pushes `tat`
 * one period later, and a send is allowed while `tat - now` is under (capacity − 1) periods. Whole
 * periods, not accumulated fractions, so the waits come out exact.
 */
export class TokenBucket {
  #tat: number;
  #last: number;
  #newChats: number[] = [];

  constructor(private policy: PacingPolicy, now: number) {
    this.#tat = now;
    this.#last = now;
  }

  /** Changes the policy (config reload); the tokens owed are kept and repaid at the new rate. */
  setPolicy(policy: PacingPolicy): void {
    const owed = Math.max(0, this.#tat - this.#last) / this.#period();
    this.policy = policy;
    this.#tat = this.#last + owed * this.#period();
  }

  /** How long until a token is available (0 = now); takes nothing. */
  waitMs(now: number): number {
    if (!this.policy.enabled) return 0;
    this.#observe(now);
    return Math.max(0, Math.ceil(this.#tat - (BUCKET_CAPACITY - 1) * this.#period() - now));
  }

  /** How long until the hourly cap allows another first message to a new chat (0 = now). */
  newChatWaitMs(now: number): number {
    if (!this.policy.enabled) return 0;
    this.#observe(now);
    this.#newChats = this.#newChats.filter((t) => now - t < 3_600_000);
    if (this.#newChats.length < this.policy.newChatsPerHour) return 0;
    // A cap of 0 would mean "never"; the config requires at least 1, so this is the oldest's age-out.
    return this.#newChats.length ? this.#newChats[0]! + 3_600_000 - now : 3_600_000;
  }

  /** Takes a token (call after waitMs returned 0); records a new chat when `newChat`. */
  take(now: number, newChat: boolean): void {
    if (!this.policy.enabled) return;
    this.#observe(now);
    this.#tat = Math.max(this.#tat, now) + this.#period();
    if (newChat) this.#newChats.push(now);
  }

  /** A random extra delay before a send. */
  jitter(random: () => number = Math.random): number {
    return this.policy.enabled ? Math.floor(random() * this.policy.jitterMs) : 0;
  }

  #period(): number {
    return 60_000 / this.policy.perMinute;
  }

  /** A wall clock stepped backwards (NTP) moves the schedule with it instead of draining the bucket. */
  #observe(now: number): void {
    if (now < this.#last) {
      const back = this.#last - now;
      this.#tat -= back;
      this.#newChats = this.#newChats.map((t) => t - back);
    }
    this.#last = now;
  }
}
