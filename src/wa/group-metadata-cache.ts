// Group metadata for one connection's group sends. Without `cachedGroupMetadata` Baileys asks the
// server for a group's members before every message to it; this cache answers from the last
// answer instead. A miss asks once however many sends wait for it, and a failed query is not
// kept. The connection feeds it the group events it sees (full metadata replaces an entry, a
// partial update is merged, a membership change drops the entry so the next send asks again), and
// an entry is asked again after `ttlMs` in case a change went unseen.

/** What the cache needs of a group's metadata. */
export interface CachedGroup {
  participants: readonly unknown[];
}

/** Group metadata by group JID, for one connection. */
export class GroupMetadataCache<T extends CachedGroup> {
  readonly #entries = new Map<string, { value: T; at: number }>();
  readonly #pending = new Map<string, Promise<T>>();
  /** Bumped by every change to a group, so a query answered after the change is not kept. */
  readonly #generation = new Map<string, number>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(opts: { ttlMs: number; maxEntries: number; now?: () => number }) {
    this.#ttlMs = opts.ttlMs;
    this.#maxEntries = opts.maxEntries;
    this.#now = opts.now ?? Date.now;
  }

  /** The group's metadata: the kept answer while fresh, else `fetch`'s (shared by concurrent callers). */
  get(jid: string, fetch: () => Promise<T>): Promise<T> {
    const entry = this.#entries.get(jid);
    if (entry && this.#now() - entry.at < this.#ttlMs) return Promise.resolve(entry.value);
    const pending = this.#pending.get(jid);
    if (pending) return pending;
    const generation = this.#generation.get(jid) ?? 0;
    const asked = fetch()
      .then((value) => {
        if ((this.#generation.get(jid) ?? 0) === generation) this.put(jid, value);
        return value;
      })
      .finally(() => {
        if (this.#pending.get(jid) === asked) this.#pending.delete(jid);
      });
    this.#pending.set(jid, asked);
    return asked;
  }

  /** Keeps full metadata (a query's answer, or a group event carrying the members). */
  put(jid: string, value: T): void {
    this.#entries.delete(jid);
    this.#entries.set(jid, { value, at: this.#now() });
    while (this.#entries.size > this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
  }

  /** Merges a partial update (subject, settings) into a kept entry; a query in flight is not kept. */
  merge(jid: string, update: Partial<T>): void {
    this.#changed(jid);
    const entry = this.#entries.get(jid);
    if (entry) entry.value = { ...entry.value, ...update };
  }

  /** Drops what is kept for the group (its members changed): the next send asks the server. */
  forget(jid: string): void {
    this.#changed(jid);
    this.#entries.delete(jid);
  }

  /** Groups kept now. */
  get size(): number {
    return this.#entries.size;
  }

  #changed(jid: string): void {
    this.#generation.set(jid, (this.#generation.get(jid) ?? 0) + 1);
    this.#pending.delete(jid);
  }
}
