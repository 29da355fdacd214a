/**
 * Every stanza that crosses the emulator, both ways, with time, account and a readable
 * rendering, plus an event-driven wait for the first entry matching a predicate.
 */
import type { BinaryNode } from '@whiskeysockets/baileys';
import { renderStanza } from './stanza.js';

/** `in` = client to emulator, `out` = emulator to client. */
export type Direction = 'in' | 'out';

/** One recorded stanza (handshake messages are recorded as `<handshake …/>` pseudo-stanzas). */
export interface TimelineEntry {
  /** Position in the timeline, strictly increasing; use it as a cursor (`after`). */
  seq: number;
  /** Wall-clock time in epoch milliseconds. */
  at: number;
  /** The account (phone number) the connection belongs to, once known. */
  phone: string | null;
  /** The emulator's connection id. */
  session: number;
  dir: Direction;
  /** One-line rendering of the stanza. */
  stanza: string;
  /** The decoded stanza itself (in-process only; not part of the JSON API). */
  node?: BinaryNode;
}

/** A declarative stanza filter, usable in-process and over the control API. */
export interface StanzaMatch {
  phone?: string;
  dir?: Direction;
  tag?: string;
  /** Attributes that must all be present with these values. */
  attrs?: Record<string, string>;
  /** Tag of a direct child that must be present. */
  child?: string;
  /** Substring of the rendered stanza. */
  contains?: string;
}

/** Options for `Timeline.waitFor`. */
export interface WaitOptions {
  /** Only entries with `seq` greater than this count (default: search the whole timeline). */
  after?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

type Predicate = (entry: TimelineEntry) => boolean;

interface Waiter {
  predicate: Predicate;
  after: number;
  resolve: (entry: TimelineEntry) => void;
}

const DEFAULT_WAIT_MS = 10_000;

/** Turns a `StanzaMatch` into a predicate. */
export function matchStanza(match: StanzaMatch): Predicate {
  return (entry) => {
    if (match.phone !== undefined && entry.phone !== match.phone) return false;
    if (match.dir !== undefined && entry.dir !== match.dir) return false;
    if (match.contains !== undefined && !entry.stanza.includes(match.contains)) return false;
    const node = entry.node;
    if (match.tag !== undefined && node?.tag !== match.tag) return false;
    for (const [key, value] of Object.entries(match.attrs ?? {})) {
      if (node?.attrs[key] !== value) return false;
    }
    if (match.child !== undefined && !(Array.isArray(node?.content) && node.content.some((c) => c.tag === match.child))) {
      return false;
    }
    return true;
  };
}

/** The recorded stanza log of one emulator. Bounded: the oldest entries are dropped first. */
export class Timeline {
  /** Entries from `head` on are the timeline; those before it were dropped and go at the next compaction. */
  private log: TimelineEntry[] = [];
  private head = 0;
  /** Connections whose account is not known yet: the seq of their first entry. */
  private readonly unassigned = new Map<number, number>();
  private readonly waiters = new Set<Waiter>();
  private nextSeq = 1;

  constructor(private readonly maxEntries = 50_000) {}

  /** Records a stanza (or a handshake pseudo-stanza given as text). */
  record(session: number, phone: string | null, dir: Direction, stanza: BinaryNode | string): TimelineEntry {
    const entry: TimelineEntry =
      typeof stanza === 'string'
        ? { seq: this.nextSeq++, at: Date.now(), phone, session, dir, stanza }
        : { seq: this.nextSeq++, at: Date.now(), phone, session, dir, stanza: renderStanza(stanza), node: stanza };
    this.log.push(entry);
    if (phone === null && !this.unassigned.has(session)) this.unassigned.set(session, entry.seq);
    // The oldest go first; the array is compacted only once as many are dropped as it keeps, so a
    // full timeline costs no copy of itself per stanza (thousands of accounts send many).
    if (this.log.length - this.head > this.maxEntries) this.head = this.log.length - this.maxEntries;
    if (this.head >= this.maxEntries) {
      this.log = this.log.slice(this.head);
      this.head = 0;
      // A connection that never logged in has nothing left to name once its entries are gone.
      const oldest = this.log[0]!.seq;
      for (const [id, seq] of this.unassigned) if (seq < oldest) this.unassigned.delete(id);
    }
    for (const waiter of this.waiters) {
      if (entry.seq > waiter.after && waiter.predicate(entry)) waiter.resolve(entry);
    }
    return entry;
  }

  /** Attributes a connection's earlier entries to `phone` once the account is known. */
  assignPhone(session: number, phone: string): void {
    const first = this.unassigned.get(session);
    this.unassigned.delete(session);
    if (first === undefined) return;
    for (let i = this.log.length - 1; i >= this.head; i--) {
      const entry = this.log[i]!;
      if (entry.seq < first) break; // nothing of this connection before its first entry
      if (entry.session === session && entry.phone === null) entry.phone = phone;
    }
  }

  /** The entries the timeline holds (a copy only while dropped ones wait for compaction). */
  private kept(): TimelineEntry[] {
    return this.head === 0 ? this.log : this.log.slice(this.head);
  }

  /** The current end of the timeline, for use as `after` in a later wait. */
  mark(): number {
    return this.nextSeq - 1;
  }

  /** Entries, optionally for one account and after a cursor. */
  entries(filter: { phone?: string; after?: number } = {}): TimelineEntry[] {
    return this.kept().filter(
      (e) => (filter.phone === undefined || e.phone === filter.phone) && e.seq > (filter.after ?? 0),
    );
  }

  /** Resolves with the first entry after `after` that matches; rejects on timeout or abort. */
  waitFor(predicate: Predicate | StanzaMatch, options: WaitOptions = {}): Promise<TimelineEntry> {
    const test = typeof predicate === 'function' ? predicate : matchStanza(predicate);
    const after = options.after ?? 0;
    const existing = this.kept().find((e) => e.seq > after && test(e));
    if (existing) return Promise.resolve(existing);
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
    return new Promise((resolve, reject) => {
      const finish = (error: Error | null, entry?: TimelineEntry): void => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.waiters.delete(waiter);
        if (error) reject(error);
        else resolve(entry!);
      };
      const waiter: Waiter = { predicate: test, after, resolve: (entry) => finish(null, entry) };
      const onAbort = (): void => finish(new Error('wait aborted'));
      const timer = setTimeout(() => finish(new Error(this.describeTimeout(timeoutMs))), timeoutMs);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }

  private describeTimeout(timeoutMs: number): string {
    const tail = this.kept().slice(-5).map((e) => `  ${e.dir} ${e.phone ?? '?'} ${e.stanza.slice(0, 160)}`);
    return `no matching stanza within ${timeoutMs} ms; last entries:\n${tail.join('\n')}`;
  }
}
