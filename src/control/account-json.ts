// The account lists of GET /v1/status and GET /v1/accounts as JSON text, joined from each
// account's own JSON (kept by its runner until a shown field changes, runner.ts statusJson) with
// its outbox and inbox counts. At a thousand accounts, building and serialising every summary
// for each request cost tens of milliseconds; joining kept strings costs about one.
import type { AccountState } from './wire.js';

/** One account's summary as JSON (an object), with what the lists filter and sort on. */
export interface AccountJson {
  id: string;
  state: AccountState;
  origin?: string;
  json: string;
}

/** Waiting outbox rows and inbox rows of each account (the counts status adds). */
export interface AccountCounts {
  queued?: Map<string, Partial<Record<'queued' | 'sending' | 'unknown' | 'held', number>>>;
  received?: Map<string, Partial<Record<'ok' | 'undecryptable' | 'ignored', number>>>;
}

/** The JSON array of the accounts' summaries, each with origin, queue and inbox after its own fields. */
export function accountsJsonArray(accounts: readonly AccountJson[], counts: AccountCounts): string {
  const parts = new Array<string>(accounts.length);
  for (let i = 0; i < accounts.length; i++) {
    const a = accounts[i]!;
    let extra = a.origin === undefined ? '' : `,"origin":${JSON.stringify(a.origin)}`;
    if (counts.queued) {
      const c = counts.queued.get(a.id);
      extra += `,"queue":{"queued":${c?.queued ?? 0},"sending":${c?.sending ?? 0},"unknown":${c?.unknown ?? 0},"held":${c?.held ?? 0}}`;
    }
    if (counts.received) {
      const c = counts.received.get(a.id);
      extra += `,"inbox":{"messages":${c?.ok ?? 0},"undecryptable":${c?.undecryptable ?? 0},"ignored":${c?.ignored ?? 0}}`;
    }
    // The account's JSON is an object: its closing brace moves after the counts.
    parts[i] = a.json.length > 2 ? `${a.json.slice(0, -1)}${extra}}` : `{${extra.slice(1)}}`; // an empty object takes the counts alone
  }
  return `[${parts.join(',')}]`;
}
