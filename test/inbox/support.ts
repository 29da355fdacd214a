// What the inbox unit tests share: an inbound message factory, a recording follow sink, a
// consumer service wired to a test database, and a wait for the service's loops.
import { pino } from 'pino';
import { expect } from 'vitest';
import { ConsumerService, type ConsumerLocks } from '../../src/inbox/consumer-service.js';
import { ConsumerStore } from '../../src/inbox/consumers.js';
import type { FollowSink } from '../../src/inbox/follow.js';
import type { Inbox } from '../../src/inbox/inbox.js';
import type { InboxRow } from '../../src/inbox/store.js';
import { DEFAULT_WEBHOOK_SETTINGS, type Poster, type StuckContext, type WebhookSettings } from '../../src/inbox/webhook.js';
import type { StateDb } from '../../src/store/db.js';
import type { InboundMessage } from '../../src/wa/types.js';

export const PEER = '15550002222@s.whatsapp.net';
export const SECRET = 'a-secret-of-16-chars-at-least';
export const silentLog = pino({ level: 'silent' });

let n = 0;
/** A text message from PEER with a fresh id (M1, M2, ...), with `over` applied. */
export function inboundMessage(over: Partial<InboundMessage> = {}): InboundMessage {
  n += 1;
  return { id: `M${n}`, chat: PEER, from: PEER, chatType: 'direct', kind: 'text', text: `hello ${n}`, timestamp: 1_700_000_000, ...over };
}

/** A follow sink that records what it is handed and can be closed like a client going away. */
export function sink(): FollowSink & { rows: InboxRow[]; close(): void } {
  const closers: Array<() => void> = [];
  let closed = false;
  const s = {
    rows: [] as InboxRow[],
    write: (row: InboxRow) => (s.rows.push(row), true),
    drained: async () => {},
    get closed() {
      return closed;
    },
    onClose: (fn: () => void) => (closed ? fn() : closers.push(fn)),
    close() {
      closed = true;
      closers.splice(0).forEach((fn) => fn());
    },
  };
  return s;
}

/** Lets the service's loops run (a few event-loop turns at a time) until `pred` holds. */
export async function until(pred: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 1000 && !(await pred()); i++) await new Promise((r) => setImmediate(r));
  expect(await pred()).toBe(true);
}

export interface ServiceOptions {
  post?: Poster;
  settings?: Partial<WebhookSettings>;
  onStuck?: (c: StuckContext) => void;
  now?: () => number;
  locks?: ConsumerLocks;
}

/** The service as the tests use it: its store is the SQLite one, answering at once. */
export type SqliteConsumerService = Omit<ConsumerService, 'store'> & { readonly store: ConsumerStore };

/** A consumer service over `db` and `inbox` with short webhook backoff; the caller stops it. */
export function consumerService(db: StateDb, inbox: Inbox, opts: ServiceOptions = {}): SqliteConsumerService {
  return new ConsumerService({
    store: new ConsumerStore(db, opts.now ? { now: opts.now } : {}),
    inbox,
    log: silentLog,
    settings: { ...DEFAULT_WEBHOOK_SETTINGS, retryInitialMs: 5, retryMaxMs: 20, ...opts.settings },
    onStuck: opts.onStuck ?? (() => {}),
    ...(opts.post ? { post: opts.post } : {}),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.locks ? { locks: opts.locks } : {}),
  }) as unknown as SqliteConsumerService;
}
