// Routes of the inbox: read stored inbound messages by cursor, and follow new ones.
import { followInbox } from '../inbox/follow.js';
import type { Inbox } from '../inbox/inbox.js';
import { type InboxMedia, InboxMediaError, type InboxMediaFile, type MediaFailure } from '../inbox/media.js';
import { createReadStream } from 'node:fs';
import { type InboxQuery, type InboxStatus, inboxRowToJson } from '../inbox/store.js';
import { normaliseRecipient } from '../outbox/recipient.js';
import { type OutboxChangesBackend, changeToJson } from '../outbox/changes.js';
import type { SendGate } from '../outbox/send-gate.js';
import type { z } from 'zod';
import {
  ChatReadBody,
  ChatReadResult,
  INBOX_DEFAULT_LIMIT,
  InboxFollowQuery,
  InboxMediaParams,
  InboxMediaQuery,
  InboxMessage,
  InboxPage,
  InboxPruneBody,
  InboxQuery as InboxQuerySchema,
} from './api-schema/inbox.js';
import { ChangeList, ChangesQuery, PruneResult } from './api-schema/messages.js';
import { HttpError } from './http-error.js';
import { inboxStreamSink, parseQuery, route } from './request-input.js';
import { requireAccount, scopedAccounts, type Caller } from './roles.js';
import type { ApiRawReply, Route } from './server.js';

/** What a reader sees unless it asks for `status`: everything but what allowFrom refused. */
const DEFAULT_STATUSES: readonly InboxStatus[] = ['ok', 'undecryptable'];

/** Parses the inbox query string; unknown parameters and bad values are a 400 naming them. */
export function parseInboxQuery(params: URLSearchParams, opts: { follow: boolean }): InboxQuery {
  return inboxQuery(opts.follow ? parseQuery(InboxFollowQuery, params) : parseQuery(InboxQuerySchema, params));
}

/** The store's query from the parsed query string (a follower reads pages of the default size). */
function inboxQuery(p: z.output<typeof InboxQuerySchema> | z.output<typeof InboxFollowQuery>): InboxQuery {
  return {
    limit: 'limit' in p ? p.limit : INBOX_DEFAULT_LIMIT,
    statuses: p.status?.length ? p.status : DEFAULT_STATUSES,
    ...(p.account ? { accounts: p.account } : {}),
    ...(p.chat !== undefined ? { chats: [p.chat] } : {}),
    ...(p.after !== undefined ? { after: p.after } : {}),
  };
}

/** The inbox routes. */
export function inboxRoutes(inbox: Pick<Inbox, 'store' | 'follow' | 'chatsOf'>): Route[] {
  // A chat asked for by number also finds that person's LID chat (and the reverse).
  const scoped = (q: InboxQuery, caller: Caller): InboxQuery => {
    // What allowFrom refused is the operator's to see, never a client's (it would undo allowFrom).
    if (caller.role === 'client' && q.statuses.includes('ignored')) {
      throw new HttpError(403, 'forbidden', `status=ignored: messages allowFrom refused need the operator role; client "${caller.name}" reads ok and undecryptable ones`);
    }
    const accounts = scopedAccounts(caller, q.accounts ?? []);
    if (accounts) q.accounts = accounts;
    if (q.chats) q.chats = inbox.chatsOf(q.accounts?.length === 1 ? q.accounts[0] : undefined, q.chats[0]!);
    return q;
  };
  return [
    route({
      method: 'GET',
      path: '/v1/inbox',
      client: 'read',
      schema: {
        summary: 'Stored inbound messages after a cursor, oldest first',
        description: 'A client never reads status=ignored (what allowFrom refused is the operator\'s).',
        query: InboxQuerySchema,
        response: InboxPage,
      },
      handler: async (req, { query }) => {
        const q = scoped(inboxQuery(query), req.caller);
        const rows = await inbox.store.list(q);
        // `next` is where to go on from: the last row's cursor, or the cursor given when nothing came.
        const next = rows.length ? rows[rows.length - 1]!.cursor : (q.after ?? 0);
        return { body: { messages: rows.map(inboxRowToJson), next: String(next) } };
      },
    }),
    route({
      method: 'POST',
      path: '/v1/inbox/prune',
      schema: {
        summary: 'Delete inbound messages older than an age, acknowledged by consumers or not',
        body: InboxPruneBody,
        bodyOptional: true,
        response: PruneResult,
      },
      // The operator's prune: unlike retention, it does not wait for consumers to acknowledge.
      handler: async (_req, { body }) => ({ body: { deleted: await inbox.store.pruneAll(Date.now() - body.olderThan), olderThanMs: body.olderThan } }),
    }),
    route({
      method: 'GET',
      path: '/v1/inbox/follow',
      subscriber: true,
      client: 'read',
      schema: {
        summary: 'The stored messages after a cursor, then each new one as it is stored (NDJSON)',
        description: 'None missed or repeated between the two; never status=ignored.',
        query: InboxFollowQuery,
        stream: InboxMessage,
      },
      handler: (req, { query }) => {
        const q = scoped(inboxQuery(query), req.caller);
        const stream = req.openStream();
        void followInbox(inbox, q, inboxStreamSink(stream), () => undefined);
      },
    }),
  ];
}

/** `GET /v1/messages/changes`: what happened to our own messages, by cursor. */
export function outboxChangesRoute(changes: OutboxChangesBackend): Route {
  return route({
    method: 'GET',
    path: '/v1/messages/changes',
    client: 'read',
    schema: {
      summary: 'Every state our messages reached that a sender cares about, oldest first, by cursor',
      query: ChangesQuery,
      response: ChangeList,
    },
    handler: async (req, { query }) => {
      const accounts = scopedAccounts(req.caller, query.account ?? []) ?? [];
      const after = query.after;
      const rows = await changes.list({ ...(after !== undefined ? { after } : {}), accounts, limit: query.limit });
      const next = rows.length ? rows[rows.length - 1]!.cursor : (after ?? 0);
      return { body: { changes: rows.map(changeToJson), next: String(next) } };
    },
  });
}

/** `POST /v1/chats/read`: read receipts for a chat's messages, through the send gate (kind `receipt`). */
export function chatReadRoute(inbox: Pick<Inbox, 'store' | 'chatsOf'>, gate: Pick<SendGate, 'sendReadReceipts'>): Route {
  return route({
    method: 'POST',
    path: '/v1/chats/read',
    client: 'send',
    schema: {
      summary: 'Read receipts (blue ticks) for a chat\'s stored messages, through the send policy as kind receipt',
      body: ChatReadBody,
      response: ChatReadResult,
      errors: { 409: 'the account is not connected' },
    },
    handler: async (req, { body }) => {
      const { account, chat: r, upTo } = body;
      requireAccount(req.caller, account);
      // The person's messages may sit in two chats (number and LID): each chat's receipt goes to
      // the chat its messages came in, every one through the gate. The chat asked for is always
      // decided (and audited), even with nothing to read.
      const chats = inbox.chatsOf(account, r.jid);
      const rows = await inbox.store.unread(account, chats, upTo);
      let marked = 0;
      let denial: { rule: string | null; reason: string } | null = null;
      for (const c of chats) {
        const mine = rows.filter((row) => row.chat === c);
        if (c !== r.jid && mine.length === 0) continue;
        const outcome = await gate.sendReadReceipts({
          account,
          chat: c,
          messages: mine.map((row) => ({ id: row.id, ...(r.chatType === 'group' ? { participant: row.from } : {}) })),
          client: req.clientName,
          role: req.caller.role,
          requestId: req.requestId,
        });
        if (outcome.decision.action !== 'allow') denial ??= { rule: outcome.decision.rule, reason: outcome.decision.reason };
        if (outcome.sent) {
          await inbox.store.markRead(mine.map((row) => row.cursor));
          marked += mine.length;
        }
      }
      const state = denial ? 'denied' : marked > 0 ? 'sent' : 'nothing_to_read';
      return {
        body: {
          account,
          chat: r.jid,
          state,
          marked,
          ...(rows.length ? { upTo: String(rows[rows.length - 1]!.cursor) } : {}),
          ...(denial ? { rule: denial.rule, reason: denial.reason } : {}),
        },
      };
    },
  });
}

/** How each media failure is answered. */
const MEDIA_FAILURES: Record<MediaFailure, { status: number; code: 'not_found' | 'download_failed' | 'media_corrupt' | 'download_timeout' }> = {
  not_media: { status: 404, code: 'not_found' },
  no_reference: { status: 404, code: 'not_found' },
  download_failed: { status: 502, code: 'download_failed' },
  corrupt: { status: 502, code: 'media_corrupt' },
  timeout: { status: 504, code: 'download_timeout' },
};

/**
 * `GET /v1/inbox/:id/media?account=&chat=`: the file of a stored media message (`:id` is the
 * message's `id`), downloaded, decrypted and checked on first use, then served from the cache.
 * `account` and `chat` narrow the lookup when one id is in several chats or accounts. A client
 * finds only rows of its accounts that it may read: anything else is a 404, as an unknown id.
 */
export function inboxMediaRoute(inbox: Pick<Inbox, 'store' | 'chatsOf'>, media: Pick<InboxMedia, 'file'>): Route {
  return route({
    method: 'GET',
    path: '/v1/inbox/:id/media',
    client: 'read',
    schema: {
      summary: 'The file of a received media message (downloaded, decrypted and checked on first use, then cached)',
      description:
        'The raw bytes: content-type the message\'s mimetype, content-disposition attachment for documents, x-wa-media-sha256 (hex, checked) and x-wa-media-cache: hit or miss.',
      params: InboxMediaParams,
      query: InboxMediaQuery,
      raw: { response: 'application/octet-stream' },
      errors: {
        404: 'no such message, not media, or stored without a download reference',
        409: 'the id is in several chats: name one with account and chat',
        502: 'download_failed, or media_corrupt (the file does not hash to the message\'s fileSha256)',
        504: 'download_timeout',
      },
    },
    handler: async (req, { params, query }): Promise<ApiRawReply> => {
      const id = params.id;
      const asked = query.account ?? [];
      const caller = req.caller;
      // A client asking for another account's message learns nothing about it: 404, not 403.
      const accounts = caller.role === 'client' ? (asked.length ? asked.filter((a) => caller.accounts.has(a)) : [...caller.accounts]) : asked;
      const chat = query.chat ?? null;
      let chats: string[] | undefined;
      if (chat !== null) {
        const r = normaliseRecipient(chat);
        chats = 'error' in r ? [chat.trim().toLowerCase()] : inbox.chatsOf(accounts.length === 1 ? accounts[0] : undefined, r.jid);
      }
      const where = `${asked.length ? ` in account ${asked[0]}` : ''}${chat !== null ? ` in chat ${chat}` : ''}`;
      const rows =
        caller.role === 'client' && accounts.length === 0
          ? []
          : await inbox.store.byMessageId(id, {
              ...(accounts.length ? { accounts } : {}),
              ...(chats ? { chats } : {}),
              // What allowFrom refused is the operator's to see, never a client's.
              statuses: caller.role === 'client' ? ['ok', 'undecryptable'] : ['ok', 'undecryptable', 'ignored'],
            });
      if (rows.length === 0) throw new HttpError(404, 'not_found', `no inbound message with id ${JSON.stringify(id)}${where}`);
      if (rows.length > 1) {
        const seen = rows.map((r) => `${r.account} ${r.chat}`).join(', ');
        throw new HttpError(409, 'conflict', `message id ${JSON.stringify(id)} is in ${rows.length} chats (${seen}); name one with account= and chat=`);
      }
      let file: InboxMediaFile;
      try {
        file = await media.file(rows[0]!);
      } catch (err) {
        if (!(err instanceof InboxMediaError)) throw err;
        const { status, code } = MEDIA_FAILURES[err.reason];
        throw new HttpError(status, code, err.message);
      }
      const row = rows[0]!;
      return {
        raw: createReadStream('', { fd: file.fd }),
        headers: {
          'content-type': safeMimetype(file.mimetype),
          'content-length': file.size,
          ...(row.kind === 'document' ? { 'content-disposition': contentDisposition(file.fileName ?? `${row.id}`) } : {}),
          'x-wa-media-sha256': file.sha256,
          'x-wa-media-cache': file.cached ? 'hit' : 'miss',
          'x-content-type-options': 'nosniff',
          'cache-control': 'no-store',
        },
      };
    },
  });
}

/** The message's mimetype when it is one (the sender chose it), else application/octet-stream. */
function safeMimetype(mimetype: string | null): string {
  const token = '[A-Za-z0-9!#$&^_.+-]+';
  const shape = new RegExp(`^${token}/${token}(\\s*;\\s*${token}=(${token}|"[^"\\\\]*"))*$`);
  return mimetype && /^[ -~]+$/.test(mimetype) && shape.test(mimetype) ? mimetype : 'application/octet-stream';
}

/** `attachment` with the sender's file name: ASCII in `filename`, the exact name in `filename*` (RFC 6266). */
function contentDisposition(name: string): string {
  const base = name.replace(/^.*[\\/]/, '') || 'file';
  const ascii = base.replace(/[^ -~]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(base).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}
