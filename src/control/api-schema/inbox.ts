// Schemas of the inbox routes: reading and following stored inbound messages, marking a chat
// read, an inbound message's file, and the operator's prune.
import { z } from 'zod';
import type { InboxStatus } from '../../inbox/store.js';
import { normaliseRecipient, type Recipient } from '../../outbox/recipient.js';
import type { InboundChatType, InboundKind } from '../../wa/types.js';
import { cursorField, cursorParam, cursorText, intParamOr, isoTime, nonEmptyString, type Expect, type Same, strictBody, strictQuery } from './common.js';
import { olderThan } from './messages.js';

/** Rows per page unless `limit` says otherwise, and the most one page holds. */
export const INBOX_DEFAULT_LIMIT = 100;
export const INBOX_MAX_LIMIT = 1000;

export const INBOX_STATUSES = ['ok', 'undecryptable', 'ignored'] as const;
type InboxStatusesMatch = Expect<Same<(typeof INBOX_STATUSES)[number], InboxStatus>>;
const CHAT_TYPES = ['direct', 'group', 'status', 'broadcast', 'newsletter'] as const;
type ChatTypesMatch = Expect<Same<(typeof CHAT_TYPES)[number], InboundChatType>>;
const INBOUND_KINDS = ['text', 'image', 'video', 'audio', 'document', 'sticker', 'location', 'contact', 'reaction', 'edit', 'revoke', 'poll', 'poll_vote', 'other', 'undecryptable'] as const;
type InboundKindsMatch = Expect<Same<(typeof INBOUND_KINDS)[number], InboundKind>>;

/** A stored inbound message (inboxRowToJson). */
export const InboxMessage = z
  .object({
    cursor: cursorText,
    id: z.string(),
    account: z.string(),
    chat: z.string(),
    from: z.string(),
    chatType: z.enum(CHAT_TYPES),
    kind: z.enum(INBOUND_KINDS),
    text: z.string().nullable(),
    timestamp: z.number().meta({ description: 'seconds since the epoch, as WhatsApp stamped it' }),
    receivedAt: isoTime,
    status: z.enum(INBOX_STATUSES),
    detail: z.record(z.string(), z.unknown()).optional().meta({ description: 'metadata of kinds other than text (mimetype, target message id, poll options, decrypt error...)' }),
    offline: z.literal(true).optional().meta({ description: 'it came from the offline queue after a reconnect' }),
  })
  .meta({ id: 'InboxMessage', description: 'An inbound message as stored.' });

/** A chat to read: a number or JID (and its other identity), or a status or broadcast list or channel, which no send reaches. */
const chatParam = z
  .string()
  .transform((chat, ctx) => {
    if (/^[^@\s]+@(broadcast|newsletter)$/i.test(chat.trim())) return chat.trim().toLowerCase();
    const r = normaliseRecipient(chat);
    if ('error' in r) {
      ctx.addIssue({ code: 'custom', message: r.error });
      return z.NEVER;
    }
    return r.jid;
  })
  .meta({ description: 'one chat: a phone number or JID (a person\'s number also finds their LID chat)' });

/** `status=`: ok, undecryptable, ignored or all; followers never get what allowFrom refused. */
function statusParam(follow: boolean) {
  const statuses = z
    .array(z.string())
    .transform((a) => (a.includes('all') ? [...INBOX_STATUSES] : a))
    .pipe(z.array(z.enum(INBOX_STATUSES, { error: (iss) => `expected ${INBOX_STATUSES.join(', ')} or all, got ${JSON.stringify(iss.input)}` })));
  const offered = follow ? ['ok', 'undecryptable'] : [...INBOX_STATUSES, 'all'];
  const meta = { items: { type: 'string', enum: offered }, description: `which statuses (default ok,undecryptable); repeated or comma-separated` };
  if (!follow) return statuses.meta(meta).optional();
  return statuses
    .refine((s) => !s.includes('ignored'), 'ignored messages are not followed (list them with GET /v1/inbox?status=ignored)')
    .meta(meta)
    .optional();
}

const account = z.array(z.string()).meta({ description: 'only these accounts; repeated or comma-separated' }).optional();
const after = cursorParam('(digits, as "cursor" or "next" gave it)').optional();

/** `limit=N` of a cursor-paged route: 1 to INBOX_MAX_LIMIT, INBOX_DEFAULT_LIMIT when absent. */
export const pageLimit = intParamOr(INBOX_DEFAULT_LIMIT, {
  min: 1,
  max: INBOX_MAX_LIMIT,
  digits: true,
  message: (raw) => `expected 1 to ${INBOX_MAX_LIMIT}, got ${JSON.stringify(raw)}`,
});

export const InboxQuery = strictQuery({ account, chat: chatParam.optional(), after, limit: pageLimit, status: statusParam(false) });
export const InboxFollowQuery = strictQuery({ account, chat: chatParam.optional(), after, status: statusParam(true) });

export const InboxPage = z.object({
  messages: z.array(InboxMessage),
  next: cursorText.meta({ description: 'where to read on from: the last cursor returned, or `after` when nothing was' }),
});

export const InboxPruneBody = strictBody(
  {
    olderThan: olderThan({ unit: 'expected a duration with a unit, such as "30d" or "12h" (this prune also deletes messages consumers have not acknowledged)' }),
  },
  { shape: '{"olderThan"}' },
);

export const ChatReadBody = strictBody(
  {
    account: nonEmptyString(),
    chat: nonEmptyString()
      .transform((chat, ctx): Recipient => {
        const r = normaliseRecipient(chat);
        if ('error' in r) {
          ctx.addIssue({ code: 'custom', message: r.error });
          return z.NEVER;
        }
        return r;
      })
      .meta({ description: 'a phone number or JID' }),
    upTo: cursorField().optional().meta({ description: 'the last cursor to mark read (default: every unread message)' }),
  },
  { shape: '{"account","chat","upTo"?}' },
);

export const ChatReadResult = z.object({
  account: z.string(),
  chat: z.string(),
  state: z.enum(['sent', 'nothing_to_read', 'denied']),
  marked: z.number().int(),
  upTo: cursorText.optional(),
  rule: z.string().nullable().optional(),
  reason: z.string().optional(),
});

export const InboxMediaParams = z.strictObject({ id: z.string().meta({ description: 'the message\'s id' }) });
export const InboxMediaQuery = strictQuery({
  account: z.array(z.string()).max(1, { error: 'give one account' }).meta({ description: 'the account whose message it is' }).optional(),
  chat: z.string().optional().meta({ description: 'the chat it is in' }),
});
