// The shapes the typed client returns and takes: the control API's own schemas (the ones that
// validate requests and write docs/openapi.json), so the client cannot drift from the daemon.
import type { z } from 'zod';
import type { Event, Me as MeSchema } from '../control/api-schema/daemon.js';
import type { InboxMessage as InboxMessageSchema } from '../control/api-schema/inbox.js';
import type { MessageRow, SendBody } from '../control/api-schema/messages.js';

/** An outbound message as the daemon stores it (`GET /v1/messages/:id`). */
export type Message = z.output<typeof MessageRow>;

/** Outbox states (docs/outbox.md). */
export type MessageState = Message['state'];

/** A stored inbound message (`GET /v1/inbox`, consumer streams). `cursor` is a string of digits. */
export type InboxMessage = z.output<typeof InboxMessageSchema>;

/** Who the caller is (`GET /v1/me`). */
export type Me = z.output<typeof MeSchema>;

/** One event of `GET /v1/events`; its other fields depend on its type. */
export type DaemonEvent = z.output<typeof Event>;

/** What `send` takes (`POST /v1/messages`): text first; media, location, contact, reaction, edit, delete as documented there. */
export type SendRequest = Omit<SendBody, 'kind'>;
