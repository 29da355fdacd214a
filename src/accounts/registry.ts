// The set of supervised accounts. Today it only knows the configured accounts, all `stopped`;
// the account runners replace the summaries with live state read from the runner objects, so
// status never comes from a second registry.
import type { AccountConfig } from '../config/schema.js';
import type { AccountSummary } from '../control/wire.js';

/** Holds the accounts the daemon supervises and reports their state. */
export class AccountRegistry {
  readonly #accounts = new Map<string, { config: AccountConfig; since: Date }>();

  constructor(accounts: readonly AccountConfig[], now: Date = new Date()) {
    for (const a of accounts) this.#accounts.set(a.id, { config: a, since: now });
  }

  /** Every account, in config order. */
  list(): AccountSummary[] {
    return [...this.#accounts.values()].map(({ config, since }) => ({
      id: config.id,
      state: 'stopped',
      since: since.toISOString(),
      ...(config.wsUrl ? { wsUrl: config.wsUrl } : {}),
    }));
  }
}
