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
  if (q.chats?.length && !q.chats.includes(row.chat)) return false;
  return q.statuses.includes(row.status);
}

/**
 * Writes every matching row after `q.after` to `sink` in cursor order, then every new one as it
 * is committed, until the sink closes. Each row is written once. During the catch-up nothing is
 * held in memory: rows are committed before they are published, so a row that arrives meanwhile
 * is found by a later page; the switch to live happens only after a page read with nothing
 * arriving since, with no await in between (a row is published only after its commit, so one
 * committed after the page's read is either published later, or arrived and set `arrived`).
 * Never rejects: a store that fails ends the stream (`sink.close`) after telling `onError`.
 */
export async function followInbox(inbox: Pick<Inbox, 'store' | 'follow'>, q: Omit<InboxQuery, 'limit'>, sink: FollowSink, onError?: (err: unknown) => void): Promise<void> {
  let last = q.after ?? 0;
  let live = false;
  let arrived = false;
  const send = (row: InboxRow): boolean => {
    last = row.cursor;
    return sink.write(row);
  };
  const unfollow = inbox.follow((row) => {
    if (!matchesQuery(q, row)) return;
    if (!live) arrived = true;
    else if (row.cursor > last) send(row);
  });
  sink.onClose(unfollow);
  try {
    for (;;) {
      arrived = false;
      const page = await inbox.store.list({ ...q, after: last, limit: FOLLOW_PAGE });
      for (const row of page) {
        if (!send(row)) await sink.drained();
        if (sink.closed) return;
      }
      if (page.length < FOLLOW_PAGE && !arrived) break;
    }
  } catch (err) {
    // The store did not answer (a shared store cut off): the stream ends, and its reader reconnects
    // from what it acknowledged. Never a rejection nobody handles.
    unfollow();
    onError?.(err);
    sink.close?.();
    return;
  }
  live = true;
}
