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

/** A token bucket with a clock passed in, so it is testable without timers. */
export class TokenBucket {
  #tokens: number;
  #last: number;
  #newChats: number[] = [];

  constructor(private policy: PacingPolicy, now: number) {
    this.#tokens = BUCKET_CAPACITY;
    this.#last = now;
  }

  /** Changes the policy (config reload). */
  setPolicy(policy: PacingPolicy): void {
    this.policy = policy;
  }

  /** How long until a token is available (0 = now); takes nothing. */
  waitMs(now: number): number {
    if (!this.policy.enabled) return 0;
    this.#refill(now);
    return this.#tokens >= 1 ? 0 : Math.ceil((1 - this.#tokens) / (this.policy.perMinute / 60_000));
  }

  /** How long until the hourly cap allows another first message to a new chat (0 = now). */
  newChatWaitMs(now: number): number {
    if (!this.policy.enabled) return 0;
    this.#newChats = this.#newChats.filter((t) => now - t < 3_600_000);
    return this.#newChats.length >= this.policy.newChatsPerHour ? this.#newChats[0]! + 3_600_000 - now : 0;
  }

  /** Takes a token (call after waitMs returned 0); records a new chat when `newChat`. */
  take(now: number, newChat: boolean): void {
    if (!this.policy.enabled) return;
    this.#refill(now);
    this.#tokens -= 1;
    if (newChat) this.#newChats.push(now);
  }

  #refill(now: number): void {
    this.#tokens = Math.min(BUCKET_CAPACITY, this.#tokens + (now - this.#last) * (this.policy.perMinute / 60_000));
    this.#last = now;
  }

  /** A random extra delay before a send. */
  jitter(random: () => number = Math.random): number {
    return this.policy.enabled ? Math.floor(random() * this.policy.jitterMs) : 0;
  }
}
