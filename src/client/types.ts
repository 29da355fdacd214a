// The shapes the control API answers with, as the typed client returns them.

/** Outbox states (docs/outbox.md). */
export type MessageState = 'queued' | 'sending' | 'unknown' | 'sent' | 'delivered' | 'read' | 'held' | 'denied' | 'failed' | 'expired' | 'cancelled';

/** An outbound message as the daemon stores it (`GET /v1/messages/:id`). */
export interface Message {
  id: number;
  account: string;
  to: string;
  chatType: 'direct' | 'group';
  kind: string;
  text: string;
  content?: Record<string, unknown>;
  messageId: string;
  state: MessageState;
  reason?: string;
  idempotencyKey: string | null;
  requestId: string | null;
  client: string | null;
  clientRole?: 'operator' | 'client';
  attempts: number;
  wireSends: number;
  createdAt: string | null;
  updatedAt: string | null;
  expiresAt: string | null;
  sentAt: string | null;
  deliveredAt: string | null;
  readAt: string | null;
  approvedBy?: string;
}

/** A stored inbound message (`GET /v1/inbox`, consumer streams). `cursor` is a string of digits. */
export interface InboxMessage {
  cursor: string;
  id: string;
  account: string;
  chat: string;
  from: string;
  chatType: 'direct' | 'group' | 'status' | 'broadcast' | 'newsletter';
  kind: string;
  text: string | null;
  timestamp: number;
  receivedAt: string;
  status: 'ok' | 'undecryptable' | 'ignored';
  detail?: Record<string, unknown>;
  offline?: true;
}

/** Who the caller is (`GET /v1/me`). */
export type Me = { role: 'operator' } | { role: 'client'; name: string; accounts: string[]; may: Array<'send' | 'read' | 'events'> };

/** One event of `GET /v1/events`. */
export interface DaemonEvent {
  type: string;
  at: string;
  seq: number;
  account?: string;
  requestId?: string;
  causedBy?: string;
  [field: string]: unknown;
}

/** What `send` takes: text first; the other kinds as `POST /v1/messages` documents them. */
export interface SendRequest {
  account: string;
  /** A phone number (any spelling), a JID, a LID or a group JID. */
  to: string;
  text?: string;
  /** A retry with the same key answers the first message instead of sending again. */
  idempotencyKey?: string;
  media?: Record<string, unknown>;
  replyTo?: Record<string, unknown> | string;
  location?: Record<string, unknown>;
  contact?: Record<string, unknown>;
  reaction?: Record<string, unknown>;
  edit?: Record<string, unknown>;
  delete?: Record<string, unknown>;
}
