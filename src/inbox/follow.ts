// Reading the inbox from a cursor onwards, without a gap or a repeat between what is already
// stored and what arrives while it is being read: follow first, read pages, then switch to live.
import type { Inbox } from './inbox.js';
import type { InboxQuery, InboxRow } from './store.js';

/** Rows per catch-up page. */
export const FOLLOW_PAGE = 500;

/** Where followed rows go (an NDJSON stream, in the daemon). */
export interface FollowSink {
  write(row: InboxRow): boolean;
  drained(): Promise<void>;
  readonly closed: boolean;
  onClose(fn: () => void): void;
  /** Ends the stream from the daemon's side (a consumer removed or changed). */
  close?(): void;
}

/** True when a row passes a query's filters (cursor aside). */
export function matchesQuery(q: Omit<InboxQuery, 'limit' | 'after'>, row: InboxRow): boolean {
  if (q.accounts?.length && !q.accounts.includes(row.account)) return false;
  if (q.chat !== undefined && row.chat !== q.chat) return false;
  return q.statuses.includes(row.status);
}

/**
 * Writes every matching row after `q.after` to `sink` in cursor order, then every new one as it
 * is committed, until the sink closes. Each row is written once: a row committed during the
 * catch-up is found by the next page or held until the catch-up ends, and skipped if already sent.
 */
export async function followInbox(inbox: Pick<Inbox, 'store' | 'follow'>, q: Omit<InboxQuery, 'limit'>, sink: FollowSink): Promise<void> {
  let last = q.after ?? 0;
  let held: InboxRow[] | null = [];
  const send = (row: InboxRow): boolean => {
    last = row.cursor;
    return sink.write(row);
  };
  const unfollow = inbox.follow((row) => {
    if (!matchesQuery(q, row)) return;
    if (held) held.push(row);
    else if (row.cursor > last) send(row);
  });
  sink.onClose(unfollow);
  for (;;) {
    const page = inbox.store.list({ ...q, after: last, limit: FOLLOW_PAGE });
    for (const row of page) {
      if (!send(row)) await sink.drained();
      if (sink.closed) return;
    }
    if (page.length < FOLLOW_PAGE) break;
  }
  const pending = held;
  held = null;
  for (const row of pending) if (row.cursor > last) send(row);
}
