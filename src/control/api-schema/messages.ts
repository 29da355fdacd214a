// Schemas of the outbox routes: sending (with the content a message can carry), the message rows
// as the API shows them, operator commands, prune, the audit, uploads and the changes journal.
import { z } from 'zod';
import type { AuditEntry, OutboxState } from '../../outbox/store.js';
import { MEDIA_KINDS, type OutboundContent } from '../../outbox/content.js';
import { ROW_KINDS } from '../../policy/policy.js';
import { cursorParam, cursorText, intParamOr, isoTime, listParam, optionalString, requiredString, type Expect, type Same, strictBody, strictQuery } from './common.js';

/** Outbox states (docs/outbox.md). */
export const OUTBOX_STATES = ['queued', 'sending', 'unknown', 'sent', 'delivered', 'read', 'held', 'denied', 'failed', 'expired', 'cancelled'] as const;
type OutboxStatesMatch = Expect<Same<(typeof OUTBOX_STATES)[number], OutboxState>>;
/** What `?wait=` may wait for. */
export const WAIT_TARGETS = ['sent', 'delivered', 'read'] as const;

// ---- What a message can carry (composed into a row by compose-message.ts) ----

export const messageId = z
  .string()
  .regex(/^[A-Za-z0-9_-]{4,128}$/, 'expected a WhatsApp message id (4-128 letters, digits, "_" or "-")')
  .meta({ description: 'a WhatsApp message id the account has in this chat' });
/** Longest caption, in characters. */
export const MAX_CAPTION = 4096;
const shortText = (max: number) => z.string().max(max, `expected at most ${max} characters`);

export const MediaInput = z
  .strictObject({
    path: z.string().min(1).optional().meta({ description: 'a file on the daemon\'s host (operators only)' }),
    base64: z.string().min(1).optional().meta({ description: 'the file\'s bytes (standard alphabet, padded)' }),
    sha256: z.string().optional().meta({ description: 'a file uploaded with POST /v1/media' }),
    kind: z.enum(MEDIA_KINDS).optional().meta({ description: 'how it is sent; from the file\'s type when left out' }),
    mimetype: z.string().min(3).max(255).optional(),
    fileName: shortText(255).min(1).optional(),
    caption: z.string().optional().meta({ description: `at most ${MAX_CAPTION} characters (or give it as text)` }),
    voice: z.boolean().optional().meta({ description: 'an audio file sent as a voice note' }),
  })
  .refine((m) => [m.path, m.base64, m.sha256].filter((v) => v !== undefined).length === 1, 'give exactly one of path, base64 or sha256 (from POST /v1/media)')
  .meta({ description: 'A file: exactly one of path, base64 or sha256.' });

export const LocationInput = z.strictObject({
  latitude: z.number().min(-90).max(90),
  longitude: z.number().min(-180).max(180),
  name: shortText(256).optional(),
  address: shortText(512).optional(),
});

export const ContactInput = z
  .strictObject({
    name: z.string().min(1).max(256),
    phone: z.string().optional(),
    vcard: z.string().max(16_384).optional(),
  })
  .refine((c) => (c.phone === undefined) !== (c.vcard === undefined), 'give exactly one of phone or vcard')
  .meta({ description: 'A contact card: a name and exactly one of phone or vcard.' });

/** One emoji (a single grapheme with a pictographic character or a flag), or "" to remove a reaction. */
function isEmoji(v: string): boolean {
  if (v === '') return true;
  const graphemes = [...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(v)];
  return graphemes.length === 1 && /\p{Extended_Pictographic}|\p{Regional_Indicator}{2}|[#*0-9]\uFE0F?\u20E3/u.test(v);
}

export const ReactionInput = z.strictObject({
  messageId,
  emoji: z.string().max(32).refine(isEmoji, 'expected one emoji (or "" to remove the reaction)').meta({ description: 'one emoji, or "" to remove the reaction' }),
});

/**
 * POST /v1/messages. The fields are checked here; what depends on other fields or on the stores
 * (one kind per message, the recipient, the messages pointed at, the media file) is checked
 * while composing (compose-message.ts).
 */
export const SendBody = strictBody(
  {
    account: requiredString(),
    to: requiredString().meta({ description: 'a phone number (international) or a WhatsApp JID' }),
    text: optionalString().meta({ description: 'the text; with media, the caption; required unless the message carries one of media, location, contact, reaction, edit, delete' }),
    idempotencyKey: z.string({ error: 'expected a string' }).optional().meta({ description: 'a repeated key answers with the message it first enqueued (200)' }),
    kind: z
      .literal('message', { error: 'only "message" can be sent through the API (leave it out: the kind follows from what the message carries)' })
      .optional()
      .meta({ deprecated: true, description: 'taken for compatibility; the kind follows from the content' }),
    media: MediaInput.nullish(),
    replyTo: messageId.nullish().meta({ description: 'a message of this chat to quote' }),
    location: LocationInput.nullish(),
    contact: ContactInput.nullish(),
    reaction: ReactionInput.nullish(),
    edit: messageId.nullish().meta({ description: 'a text message this account sent, to replace with text' }),
    delete: messageId.nullish().meta({ description: 'a message this account sent, to delete for everyone' }),
  },
  { hidden: ['kind'] },
);
export type SendBody = z.output<typeof SendBody>;

export const SendQuery = strictQuery({
  wait: z
    .enum(WAIT_TARGETS, { error: (iss) => `expected one of ${WAIT_TARGETS.join(', ')}, got ${JSON.stringify(iss.input)}` })
    .optional()
    .meta({ description: 'stream the message\'s events (NDJSON) until it reaches this state or one it cannot leave' }),
});

// ---- Rows as the API shows them ----

const OutboxStateSchema = z.enum(OUTBOX_STATES);

const MessageRef = z.object({ id: z.string(), fromMe: z.boolean(), participant: z.string().optional() });
const QuotedRef = MessageRef.extend({ text: z.string().nullable() });
const MediaFile = z.object({ sha256: z.string(), bytes: z.number().int(), mimetype: z.string(), fileName: z.string().optional() });
const replyable = { replyTo: QuotedRef.optional() };

export const MessageContent = z
  .discriminatedUnion('type', [
    z.object({ type: z.literal('text'), text: z.string(), ...replyable }),
    z.object({ type: z.enum(MEDIA_KINDS), media: MediaFile, caption: z.string().optional(), voice: z.boolean().optional(), ...replyable }),
    z.object({ type: z.literal('location'), latitude: z.number(), longitude: z.number(), name: z.string().optional(), address: z.string().optional(), ...replyable }),
    z.object({ type: z.literal('contact'), displayName: z.string(), vcard: z.string(), ...replyable }),
    z.object({ type: z.literal('reaction'), target: MessageRef, emoji: z.string() }),
    z.object({ type: z.literal('edit'), target: MessageRef, text: z.string() }),
    z.object({ type: z.literal('delete'), target: MessageRef }),
  ])
  .meta({ id: 'MessageContent', description: 'What a message sends beyond plain text (docs/media.md).' });
type MessageContentMatches = Expect<Same<z.output<typeof MessageContent>, OutboundContent>>;

/** An outbox row (rowToJson). */
export const MessageRow = z
  .object({
    id: z.number().int(),
    account: z.string(),
    to: z.string(),
    chatType: z.enum(['direct', 'group']),
    kind: z.enum(ROW_KINDS),
    text: z.string(),
    content: MessageContent.optional(),
    messageId: z.string(),
    state: OutboxStateSchema,
    reason: z.string().optional(),
    idempotencyKey: z.string().nullable(),
    requestId: z.string().nullable(),
    client: z.string().nullable(),
    clientRole: z.enum(['operator', 'client']).optional(),
    attempts: z.number().int(),
    wireSends: z.number().int(),
    createdAt: isoTime.nullable(),
    updatedAt: isoTime.nullable(),
    expiresAt: isoTime.nullable(),
    sentAt: isoTime.nullable(),
    deliveredAt: isoTime.nullable(),
    readAt: isoTime.nullable(),
    approvedBy: z.string().optional(),
  })
  .meta({ id: 'Message', description: 'An outbound message and its state.' });

/** What POST /v1/messages answers. */
export const Accepted = z
  .object({ id: z.number().int(), messageId: z.string(), state: OutboxStateSchema, reason: z.string().optional() })
  .meta({ id: 'Accepted', description: 'The enqueued message: its id, WhatsApp message id and state (a denial or hold says why).' });

/** A `message.<state>` event. */
export const MessageEvent = z
  .looseObject({
    type: z.string().meta({ pattern: '^message\\.' }),
    at: isoTime,
    seq: z.number().int().optional(),
    account: z.string(),
    requestId: z.string().optional(),
    causedBy: z.string().optional(),
    id: z.number().int(),
    messageId: z.string(),
    to: z.string(),
    kind: z.string(),
    state: OutboxStateSchema,
    reason: z.string().optional(),
    wireSends: z.number().int(),
  })
  .meta({ id: 'MessageEvent', description: 'A message reached a state.' });

/** A line of POST /v1/messages?wait=: first the acceptance, then the message's events. */
export const WaitLine = z.union([Accepted.extend({ type: z.literal('accepted'), replayed: z.literal(true).optional() }), MessageEvent]);

export const MessageIdParams = z.strictObject({
  id: z
    .string()
    .refine((v) => Number.isInteger(Number(v)) && Number(v) > 0, { error: (iss) => `expected a message id (a positive integer), got ${JSON.stringify(iss.input)}` })
    .transform(Number)
    .meta({ type: 'integer', minimum: 1 }),
});

const limit10k = intParamOr(100, { min: 1, max: 10_000, message: () => 'expected 1-10000' });

export const MessagesQuery = strictQuery({
  account: listParam(z.string(), 'only these accounts'),
  state: z
    .enum(OUTBOX_STATES, { error: `expected one of ${OUTBOX_STATES.join(', ')}` })
    .optional()
    .meta({ description: 'only messages in this state' }),
  limit: limit10k,
  before: z
    .string()
    .regex(/^[1-9]\d{0,14}$/, { error: (iss) => `expected a message id (a positive integer), got ${JSON.stringify(iss.input)}` })
    .transform(Number)
    .optional()
    .meta({ type: 'integer', minimum: 1, description: 'only messages with smaller ids (the next page, newest first)' }),
});

export const MessageList = z.object({ messages: z.array(MessageRow) });

// ---- Prune ----

/** Parses durations like "90s", "15m", "12h", "7d" or plain milliseconds. */
export function parseDuration(v: string): number | null {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(v.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
  return n * unit;
}

const olderThanMessage = (v: unknown) => `expected a duration such as "7d", "12h" or a whole number of milliseconds (0 or more), got ${JSON.stringify(v) ?? 'nothing'}`;

/**
 * An age in milliseconds: a duration (`90s`, `15m`, `12h`, `7d`, or digits for ms) or a whole
 * number of ms. A negative age would put the cut-off in the future and delete everything; a
 * fraction is not a number of milliseconds: both are refused. With `unit`, the string form
 * needs its unit (a bare "30" is 30 ms, not 30 days).
 */
export function olderThan(opts: { unit?: string } = {}) {
  return z
    .union([z.string(), z.number()], { error: (iss) => olderThanMessage(iss.input) })
    .transform((v, ctx) => {
      if (opts.unit && typeof v === 'string' && !/^\s*\d+\s*(ms|s|m|h|d)\s*$/.test(v)) {
        ctx.addIssue({ code: 'custom', message: `${opts.unit}, got ${JSON.stringify(v)}` });
        return z.NEVER;
      }
      const ms = typeof v === 'string' ? parseDuration(v) : v;
      if (ms === null || !Number.isSafeInteger(ms) || ms < 0) {
        ctx.addIssue({ code: 'custom', message: olderThanMessage(v) });
        return z.NEVER;
      }
      return ms;
    })
    .meta({
      anyOf: [
        { type: 'string', pattern: opts.unit ? '^\\s*[0-9]+\\s*(ms|s|m|h|d)\\s*$' : '^\\s*[0-9]+(ms|s|m|h|d)?\\s*$' },
        { type: 'integer', minimum: 0 },
      ],
      description: opts.unit ? 'an age: a duration with a unit (30d, 12h, 15m, 90s, 500ms) or whole milliseconds' : 'an age: a duration (7d, 12h, 15m, 90s, or digits for ms) or whole milliseconds',
    });
}

/** POST /v1/messages/prune: `olderThan` is read from whatever was sent (anything but an object reads as none). */
export const MessagePruneBody = z.preprocess(
  (raw) => (typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? raw : {}),
  z.looseObject({ olderThan: olderThan() }),
);

export const PruneResult = z.object({ deleted: z.number().int(), olderThanMs: z.number().int() });

// ---- Audit, uploads, changes ----

export const AuditQuery = strictQuery({ account: listParam(z.string(), 'only these accounts'), limit: limit10k });

const AuditEntryJson = z
  .object({
    at: isoTime,
    account: z.string(),
    recipient: z.string(),
    kind: z.string(),
    decision: z.enum(['allow', 'deny', 'hold', 'approve', 'reject']),
    rule: z.string(),
    reason: z.string(),
    stage: z.enum(['enqueue', 'send', 'operator']),
    outboxId: z.number().int().nullable(),
    client: z.string().nullable(),
    role: z.enum(['operator', 'client']).nullable().optional(),
    requestId: z.string().nullable(),
  })
  .meta({ id: 'AuditEntry', description: 'One policy decision.' });
type AuditEntryMatches = Expect<Same<Omit<z.output<typeof AuditEntryJson>, 'at'>, Omit<AuditEntry, 'at'>>>;

export const AuditList = z.object({ audit: z.array(AuditEntryJson) });

export const MediaUploaded = z.object({ sha256: z.string(), bytes: z.number().int(), mimetype: z.string().nullable().meta({ description: 'the type the bytes show, or null' }) });

export const ChangesQuery = strictQuery({
  account: listParam(z.string(), 'only these accounts'),
  after: cursorParam('(digits, as "cursor" or "next" gave it)').optional(),
  limit: intParamOr(100, { min: 1, max: 1000, digits: true, message: (raw) => `expected 1 to 1000, got ${JSON.stringify(raw)}` }),
});

export const ChangeList = z.object({
  changes: z.array(
    z.object({
      cursor: cursorText,
      id: z.number().int(),
      account: z.string(),
      messageId: z.string(),
      to: z.string(),
      state: OutboxStateSchema,
      reason: z.string().optional(),
      at: isoTime,
    }),
  ),
  next: cursorText.meta({ description: 'where to read on from: the last cursor returned, or `after` when nothing was' }),
});
