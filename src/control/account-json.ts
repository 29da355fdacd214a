// The account lists of GET /v1/status and GET /v1/accounts, joined from each account's own JSON
// (kept by its runner until a shown field changes, runner.ts statusJson) with its outbox and inbox
// counts. Each account's entry is kept as bytes until its JSON or its counts change, and an answer
// is those bytes copied into one buffer: building the strings for every request made ~300 KB of
// short-lived garbage per hundred accounts, and the scavenges it caused were most of the slow
// answers.
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
  queued?: ReadonlyMap<string, Readonly<Partial<Record<'queued' | 'sending' | 'unknown' | 'held', number>>>>;
  received?: ReadonlyMap<string, Readonly<Partial<Record<'ok' | 'undecryptable' | 'ignored', number>>>>;
}

interface Entry {
  json: string;
  origin: string | undefined;
  /** The counts shown, in order (queued, sending, unknown, held, messages, undecryptable, ignored), or -1 where a kind is not shown. */
  counts: number[];
  bytes: Buffer;
  /** The last list this entry was part of (entries of removed accounts are dropped). */
  seen: number;
}

const OPEN = Buffer.from('[');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']');

/** Each account's entry in the lists, kept as bytes between changes. */
export class AccountEntries {
  readonly #entries = new Map<string, Entry>();
  #generation = 0;
  readonly #scratch: number[] = new Array<number>(7);
  /** The parts and the buffer of the last array(). */
  #last: { parts: Buffer[]; joined: Buffer } | null = null;

  /**
   * The JSON array of the accounts' summaries as one buffer. While no entry changed, the buffer of
   * the last call is answered again: at a thousand accounts it is most of a megabyte, and
   * allocating one per request made the garbage collector run for the account lists alone.
   */
  array(accounts: readonly AccountJson[], counts: AccountCounts): Buffer {
    const parts = this.arrayParts(accounts, counts);
    const last = this.#last;
    if (last && last.parts.length === parts.length && last.parts.every((p, i) => p === parts[i])) return last.joined;
    const joined = Buffer.concat(parts);
    this.#last = { parts, joined };
    return joined;
  }

  /** The JSON array of the accounts' summaries, each with origin, queue and inbox after its own fields, as the parts of one buffer. */
  arrayParts(accounts: readonly AccountJson[], counts: AccountCounts): Buffer[] {
    const generation = ++this.#generation;
    const parts = new Array<Buffer>(accounts.length * 2 + 1);
    parts[0] = OPEN;
    for (let i = 0; i < accounts.length; i++) {
      parts[i * 2 + 1] = this.#entry(accounts[i]!, counts, generation).bytes;
      parts[i * 2 + 2] = i === accounts.length - 1 ? CLOSE : COMMA;
    }
    if (accounts.length === 0) parts.push(CLOSE);
    // Drop the entries of accounts that are gone, now and then (a filtered list leaves others unseen).
    if (this.#entries.size > accounts.length * 2 + 64) {
      for (const [id, e] of this.#entries) if (e.seen !== generation) this.#entries.delete(id);
    }
    return parts;
  }

  #entry(a: AccountJson, counts: AccountCounts, generation: number): Entry {
    const c = this.#scratch;
    const q = counts.queued ? (counts.queued.get(a.id) ?? {}) : null;
    const r = counts.received ? (counts.received.get(a.id) ?? {}) : null;
    c[0] = q ? (q.queued ?? 0) : -1;
    c[1] = q ? (q.sending ?? 0) : -1;
    c[2] = q ? (q.unknown ?? 0) : -1;
    c[3] = q ? (q.held ?? 0) : -1;
    c[4] = r ? (r.ok ?? 0) : -1;
    c[5] = r ? (r.undecryptable ?? 0) : -1;
    c[6] = r ? (r.ignored ?? 0) : -1;
    const kept = this.#entries.get(a.id);
    if (kept && kept.json === a.json && kept.origin === a.origin && kept.counts.every((v, i) => v === c[i])) {
      kept.seen = generation;
      return kept;
    }
    let extra = a.origin === undefined ? '' : `,"origin":${JSON.stringify(a.origin)}`;
    if (q) extra += `,"queue":{"queued":${c[0]},"sending":${c[1]},"unknown":${c[2]},"held":${c[3]}}`;
    if (r) extra += `,"inbox":{"messages":${c[4]},"undecryptable":${c[5]},"ignored":${c[6]}}`;
    // The account's JSON is an object: its closing brace moves after the counts.
    const text = a.json.length > 2 ? `${a.json.slice(0, -1)}${extra}}` : `{${extra.slice(1)}}`; // an empty object takes the counts alone
    const entry: Entry = { json: a.json, origin: a.origin, counts: c.slice(), bytes: Buffer.from(text), seen: generation };
    this.#entries.set(a.id, entry);
    return entry;
  }
}
