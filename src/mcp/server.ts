// The MCP server: five tools a model may use, each one request of a client's to the daemon. There
// is no operator tool (approve, retry, accounts, status): the server runs as a client, and what
// a client may not do is not offered. Input schemas are strict, so a field the daemon would take
// (a forged `kind`, an idempotency key, a media path) cannot be slipped in by a model.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { NextPage } from '../control/api-schema/consumers.js';
import type { Me as MeSchema } from '../control/api-schema/daemon.js';
import type { InboxPage } from '../control/api-schema/inbox.js';
import { type Accepted, ContactInput, LocationInput, MAX_CAPTION, ReactionInput, messageId as waMessageId } from '../control/api-schema/messages.js';
import { MEDIA_KINDS } from '../outbox/content.js';
import { VERSION } from '../version.js';
import type { ClientIdentity } from './client-identity.js';
import { type DaemonPort, withDeadline } from './daemon-port.js';
import { failureText } from './failure-text.js';
import { errorResult, jsonResult } from './tool-result.js';

/** What the server is built from. */
export interface McpServerOptions {
  /** The daemon, as the client the token makes this server. */
  daemon: DaemonPort;
  /** Who the daemon said this server is (GET /v1/me at start). */
  identity: ClientIdentity;
  /** The stream consumer read_inbox and acknowledge use when the call names none. */
  defaultConsumer?: string | undefined;
  /** Deadline of each daemon call (default 15 s). */
  timeoutMs?: number;
  /** Where internal errors are reported (never to the model). */
  log?: (line: string) => void;
}

/** Messages per read unless the call asks for more: a model reads them all, so keep pages short. */
export const DEFAULT_READ_LIMIT = 20;

const accountId = z.string().min(1).max(64);
const cursor = z.union([z.string().regex(/^\d{1,15}$/, 'expected a cursor (digits)'), z.number().int().min(0).max(999_999_999_999_999)]);
const messageId = z.union([z.string().regex(/^[1-9]\d{0,15}$/, 'expected a message id (a positive integer)'), z.number().int().min(1)]);

// The daemon's answers, as the route schemas describe them.
type SendAnswer = z.output<typeof Accepted>;
type InboxAnswer = z.output<typeof InboxPage>;
type ConsumerPage = z.output<typeof NextPage>;
type Me = z.output<typeof MeSchema>;

/** Builds the server; connect it to a transport to serve. */
export function buildMcpServer(opts: McpServerOptions): McpServer {
  const daemon = withDeadline(opts.daemon, opts.timeoutMs ?? 15_000);
  const { identity, defaultConsumer } = opts;
  const server = new McpServer(
    { name: 'wa-supervisor', version: VERSION },
    {
      instructions:
        `Sends and reads WhatsApp messages through the wa-supervisor daemon as its client "${identity.name}". ` +
        'Every send passes the daemon\'s send policy: a message can be refused (denied) or held for a person to approve. ' +
        'A refusal is final; do not try other spellings of the number or other accounts to get round it.',
    },
  );

  // Every call: daemon errors become one line for the model, and nothing else escapes.
  const guarded = <A>(fn: (args: A) => Promise<CallToolResult>) => async (args: A): Promise<CallToolResult> => {
    try {
      return await fn(args);
    } catch (err) {
      const { text, internal } = failureText(err);
      if (internal) opts.log?.(`wa-supervisor mcp: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      return errorResult(text);
    }
  };

  server.registerTool(
    'send_message',
    {
      title: 'Send a WhatsApp message',
      description:
        'Send a message from one of your WhatsApp accounts: text, or a reply, reaction, location, contact card, edit, delete or file. The daemon decides whether it may go out: ' +
        'the result is either accepted (state "queued"; follow it with message_status), "held" (it waits for a person to approve it; not an error), ' +
        'or a tool error starting "denied:" that says which rule refused it. A denied message is never sent; do not retry it in another spelling.',
      inputSchema: z.strictObject({
        account: accountId.describe('The account to send from: one of the accounts list_accounts returns.'),
        to: z
          .string()
          .min(1)
          .max(128)
          .describe('The recipient: a phone number in international format (e.g. +15551234567), or a WhatsApp JID (…@s.whatsapp.net, …@lid, a group …@g.us).'),
        text: z
          .string()
          .min(1)
          .max(65_536)
          .optional()
          .describe('The message text (with media: its caption; with edit: the new text). Required unless the message is a location, contact, reaction, delete or media.'),
        idempotencyKey: z
          .string()
          .min(1)
          .max(128)
          .optional()
          .describe('Any unique string for this message. Give the same key again when retrying after a timeout or a broken connection: the daemon then answers with the first message instead of sending a second.'),
        // The kinds beyond text, with the control API's own schemas; a file only as bytes (never a path on the daemon's host).
        replyTo: waMessageId.optional().describe('Quote this message of the chat (its WhatsApp message id, as read_inbox shows it).'),
        reaction: ReactionInput.optional().describe('React to a message of the chat with one emoji ("" removes the reaction); no text.'),
        location: LocationInput.optional().describe('Send a location; no text.'),
        contact: ContactInput.optional().describe('Send a contact card: a name and exactly one of phone or vcard; no text.'),
        edit: waMessageId.optional().describe('Replace the text of a message this account sent (its WhatsApp message id) with text.'),
        delete: waMessageId.optional().describe('Delete a message this account sent, for everyone; no text.'),
        media: z
          .strictObject({
            base64: z.string().min(1).describe('The file\'s bytes, base64 (standard alphabet, padded); the whole request is at most 1 MiB.'),
            kind: z.enum(MEDIA_KINDS).optional().describe('How it is sent; from the file\'s type when left out.'),
            mimetype: z.string().min(3).max(255).optional(),
            fileName: z.string().min(1).max(255).optional(),
            caption: z.string().max(MAX_CAPTION).optional(),
            voice: z.boolean().optional().describe('An audio file sent as a voice note.'),
          })
          .optional()
          .describe('Send a file (image, video, audio, document, sticker).'),
      }),
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    },
    guarded(async (args) => {
      const message = Object.fromEntries(Object.entries(args).filter(([, v]) => v !== undefined));
      const { body } = await daemon.request<SendAnswer>('POST', '/v1/messages', message);
      if (body.state === 'denied') return errorResult(`denied: ${body.reason ? phoneNumbers(body.reason) : 'refused by the send policy'}`);
      const row = { id: body.id, messageId: body.messageId, state: body.state, ...(body.reason ? { reason: body.reason } : {}) };
      if (body.state === 'held') {
        return jsonResult({ ...row, note: 'held: the message waits for an operator\'s approval before it is sent; it is not refused. message_status shows when it moves on.' });
      }
      return jsonResult({ ...row, note: 'accepted: the daemon sends it in order; message_status with this id shows sent, delivered and read.' });
    }),
  );

  server.registerTool(
    'read_inbox',
    {
      title: 'Read received WhatsApp messages',
      description:
        'Read messages your accounts received, oldest first, each with a cursor. ' +
        'Without consumer: pass after (the "next" of the previous read) to read on; without after it starts at the oldest kept message. ' +
        'With consumer (a stream consumer the operator set up): returns what that consumer has not acknowledged yet, from its committed cursor; ' +
        'after handling the messages call acknowledge with the "next" cursor, or the same messages come again. ' +
        (defaultConsumer ? `This server reads the consumer "${defaultConsumer}" when no consumer is given (after and account then do not apply). ` : '') +
        `At most limit messages per call (default ${DEFAULT_READ_LIMIT}).`,
      inputSchema: z.strictObject({
        account: accountId.optional().describe('Only this account\'s messages (default: all of yours). Not with a consumer.'),
        after: cursor.optional().describe('Only messages after this cursor: the "next" of the previous read. Not with a consumer.'),
        limit: z.number().int().min(1).max(1000).optional().describe(`At most this many messages (1-1000, default ${DEFAULT_READ_LIMIT}).`),
        consumer: z.string().min(1).max(64).optional().describe('Read this stream consumer from its committed cursor instead.'),
      }),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    guarded(async ({ account, after, limit, consumer }) => {
      const name = consumer ?? defaultConsumer;
      const q = new URLSearchParams();
      if (name !== undefined) {
        const stray = [account !== undefined ? 'account' : null, after !== undefined ? 'after' : null].filter(Boolean);
        if (stray.length) {
          const verb = stray.length === 1 ? 'does' : 'do';
          return errorResult(`invalid: ${stray.join(' and ')} ${verb} not apply to a read of consumer "${name}" (it reads on from its committed cursor; acknowledge moves it)`);
        }
        q.set('consumer', name);
        q.set('limit', String(limit ?? DEFAULT_READ_LIMIT));
        const { body } = await daemon.request<ConsumerPage>('GET', `/v1/inbox/next?${q}`);
        const note = body.messages.length
          ? `when these are handled, call acknowledge with consumer "${body.consumer}" and cursor "${body.next}"; until then read_inbox returns them again`
          : 'nothing new for this consumer';
        return jsonResult({ consumer: body.consumer, committed: body.committed, messages: body.messages, next: body.next, note });
      }
      if (account !== undefined) q.set('account', account);
      if (after !== undefined) q.set('after', String(after));
      q.set('limit', String(limit ?? DEFAULT_READ_LIMIT));
      const { body } = await daemon.request<InboxAnswer>('GET', `/v1/inbox?${q}`);
      const note = body.messages.length ? `to read on, pass after: "${body.next}"` : `nothing after this cursor yet; ask again later with after: "${body.next}"`;
      return jsonResult({ messages: body.messages, next: body.next, note });
    }),
  );

  server.registerTool(
    'acknowledge',
    {
      title: 'Acknowledge messages read from a consumer',
      description:
        'Tell the daemon a stream consumer has handled every message up to and including cursor (the "next" of read_inbox with that consumer). ' +
        'The next read_inbox of the consumer starts after it. Acknowledging is final.' +
        (defaultConsumer ? ` consumer defaults to "${defaultConsumer}".` : ''),
      inputSchema: z.strictObject({
        consumer: z.string().min(1).max(64).optional().describe(defaultConsumer ? `The consumer (default "${defaultConsumer}").` : 'The consumer that was read.'),
        cursor: cursor.describe('The last handled message\'s cursor: the "next" that read_inbox returned.'),
      }),
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    guarded(async ({ consumer, cursor: upTo }) => {
      const name = consumer ?? defaultConsumer;
      if (name === undefined) return errorResult('invalid: consumer: required (name the consumer you read with read_inbox)');
      const { body } = await daemon.request<{ consumer: string; cursor: string }>('POST', '/v1/inbox/ack', { consumer: name, cursor: String(upTo) });
      return jsonResult({ consumer: body.consumer, committed: body.cursor });
    }),
  );

  server.registerTool(
    'message_status',
    {
      title: 'Status of a sent message',
      description:
        'The state of a message you sent, by the id send_message returned: queued, sending, sent, delivered, read, held, denied, failed, expired or cancelled, with times and the reason of a refusal or failure.',
      inputSchema: z.strictObject({ id: messageId.describe('The id send_message returned.') }),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    guarded(async ({ id }) => {
      const { body } = await daemon.request<Record<string, unknown>>('GET', `/v1/messages/${encodeURIComponent(String(id))}`);
      return jsonResult(body);
    }),
  );

  server.registerTool(
    'list_accounts',
    {
      title: 'Your accounts and permissions',
      description: 'The WhatsApp accounts this server may use, what it may do with them (send, read, events), and the stream consumers it may read with read_inbox.',
      inputSchema: z.strictObject({}),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    guarded(async () => {
      // Asked each time: a config reload can change the accounts and permissions.
      const { body } = await daemon.request<Me>('GET', '/v1/me');
      if (body.role !== 'client') return errorResult('forbidden: the daemon no longer sees this server as a client');
      return jsonResult({ client: body.name, accounts: body.accounts ?? [], may: body.may ?? [], consumers: body.consumers ?? [], ...(defaultConsumer ? { defaultConsumer } : {}) });
    }),
  );

  return server;
}

/** A reason's person JIDs as the numbers a model wrote (`15550003333@s.whatsapp.net` reads `15550003333`). */
export function phoneNumbers(reason: string): string {
  return reason.replace(/\b(\d{7,15})@s\.whatsapp\.net\b/g, '$1');
}
