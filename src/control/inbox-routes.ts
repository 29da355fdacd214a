// Routes of the inbox: read stored inbound messages by cursor, and follow new ones.
import { followInbox } from '../inbox/follow.js';
import type { Inbox } from '../inbox/inbox.js';
import { type InboxMedia, InboxMediaError, type InboxMediaFile, type MediaFailure } from '../inbox/media.js';
import { createReadStream } from 'node:fs';
import { type InboxQuery, type InboxStatus, inboxRowToJson } from '../inbox/store.js';
import { normaliseRecipient } from '../outbox/recipient.js';
import { type OutboxChangesBackend, changeToJson } from '../outbox/changes.js';
import type { SendGate } from '../outbox/send-gate.js';
import { HttpError } from './http-error.js';
import { cursorValue, inboxStreamSink, listParam, nonEmptyString, objectBody, rejectUnknownFields, rejectUnknownParams } from './request-input.js';
import { olderThanMs } from './message-routes.js';
import { requireAccount, scopedAccounts, type Caller } from './roles.js';
import type { ApiRawReply, Route } from './server.js';

/** Rows per page unless `limit` says otherwise, and the most one page holds. */
export const INBOX_DEFAULT_LIMIT = 100;
export const INBOX_MAX_LIMIT = 1000;

const STATUSES: readonly InboxStatus[] = ['ok', 'undecryptable', 'ignored'];
/** What a reader sees unless it asks for `status`: everything but what allowFrom refused. */
const DEFAULT_STATUSES: readonly InboxStatus[] = ['ok', 'undecryptable'];

/** `after=CURSOR` of a cursor-paged route (undefined when absent); anything but digits is a 400. */
export function afterParam(params: URLSearchParams): number | undefined {
  const after = params.get('after');
  return after === null ? undefined : cursorValue(after, 'after', '(digits, as "cursor" or "next" gave it)');
}

/** `limit=N` of a cursor-paged route: 1 to INBOX_MAX_LIMIT, INBOX_DEFAULT_LIMIT when absent. */
export function limitParam(params: URLSearchParams): number {
  const limit = params.get('limit');
  if (limit === null) return INBOX_DEFAULT_LIMIT;
  const n = Number(limit);
  if (!/^\d+$/.test(limit) || n < 1 || n > INBOX_MAX_LIMIT) throw new HttpError(400, 'bad_request', `limit: expected 1 to ${INBOX_MAX_LIMIT}, got ${JSON.stringify(limit)}`);
  return n;
}

/** Parses the inbox query string; unknown parameters and bad values are a 400 naming them. */
export function parseInboxQuery(params: URLSearchParams, opts: { follow: boolean }): InboxQuery {
  const known = opts.follow ? ['account', 'chat', 'after', 'status'] : ['account', 'chat', 'after', 'limit', 'status'];
  rejectUnknownParams(params, known);
  const q: InboxQuery = { limit: INBOX_DEFAULT_LIMIT, statuses: DEFAULT_STATUSES };
  const accounts = listParam(params, 'account');
  if (accounts.length) q.accounts = accounts;
  const chat = params.get('chat');
  if (chat !== null) {
    // Chats nobody can send to (status updates, broadcast lists, channels) can still be read.
    if (/^[^@\s]+@(broadcast|newsletter)$/i.test(chat.trim())) q.chats = [chat.trim().toLowerCase()];
    else {
      const r = normaliseRecipient(chat);
      if ('error' in r) throw new HttpError(400, 'bad_request', `chat: ${r.error}`);
      q.chats = [r.jid];
    }
  }
  const after = afterParam(params);
  if (after !== undefined) q.after = after;
  q.limit = limitParam(params);
  const statuses = listParam(params, 'status');
  if (statuses.length) {
    const wanted = statuses.includes('all') ? [...STATUSES] : statuses;
    for (const s of wanted) {
      if (!(STATUSES as readonly string[]).includes(s)) throw new HttpError(400, 'bad_request', `status: expected ${STATUSES.join(', ')} or all, got ${JSON.stringify(s)}`);
    }
    // Followers, like consumers, are never handed what allowFrom refused.
    if (opts.follow && wanted.includes('ignored')) throw new HttpError(400, 'bad_request', 'status: ignored messages are not followed (list them with GET /v1/inbox?status=ignored)');
    q.statuses = wanted as InboxStatus[];
  }
  return q;
}

/** The inbox routes. */
export function inboxRoutes(inbox: Pick<Inbox, 'store' | 'follow' | 'chatsOf'>): Route[] {
  // A chat asked for by number also finds that person's LID chat (and the reverse).
  const query = (params: URLSearchParams, follow: boolean, caller: Caller): InboxQuery => {
    const q = parseInboxQuery(params, { follow });
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
    {
      method: 'GET',
      path: '/v1/inbox',
      client: 'read',
      handler: async (req) => {
        const q = query(req.url.searchParams, false, req.caller);
        const rows = await inbox.store.list(q);
        // `next` is where to go on from: the last row's cursor, or the cursor given when nothing came.
        const next = rows.length ? rows[rows.length - 1]!.cursor : (q.after ?? 0);
        return { body: { messages: rows.map(inboxRowToJson), next: String(next) } };
      },
    },
    {
      method: 'POST',
      path: '/v1/inbox/prune',
      handler: async (req) => {
        // The operator's prune: unlike retention, it does not wait for consumers to acknowledge.
        const sent = await req.json();
        const body = sent === undefined ? undefined : objectBody(sent, '{"olderThan"}');
        if (body) rejectUnknownFields(body, ['olderThan']);
        // Unacknowledged rows go too, so a bare "30" (30 ms, not 30 days) must not empty the inbox:
        // the string form needs a unit here.
        const raw = body?.olderThan;
        if (typeof raw === 'string' && !/^\s*\d+\s*(ms|s|m|h|d)\s*$/.test(raw)) {
          throw new HttpError(400, 'bad_request', `olderThan: expected a duration with a unit, such as "30d" or "12h" (this prune also deletes messages consumers have not acknowledged), got ${JSON.stringify(raw)}`);
        }
        const ms = olderThanMs(body);
        return { body: { deleted: await inbox.store.pruneAll(Date.now() - ms), olderThanMs: ms } };
      },
    },
    {
      method: 'GET',
      path: '/v1/inbox/follow',
      subscriber: true,
      client: 'read',
      handler: (req) => {
        const q = query(req.url.searchParams, true, req.caller);
        const stream = req.openStream();
        void followInbox(inbox, q, inboxStreamSink(stream), () => undefined);
      },
    },
  ];
}

/** `GET /v1/messages/changes`: what happened to our own messages, by cursor. */
export function outboxChangesRoute(changes: OutboxChangesBackend): Route {
  return {
    method: 'GET',
    path: '/v1/messages/changes',
    client: 'read',
    handler: async (req) => {
      const params = req.url.searchParams;
      rejectUnknownParams(params, ['account', 'after', 'limit']);
      const accounts = scopedAccounts(req.caller, listParam(params, 'account')) ?? [];
      const after = afterParam(params);
      const rows = await changes.list({ ...(after !== undefined ? { after } : {}), accounts, limit: limitParam(params) });
      const next = rows.length ? rows[rows.length - 1]!.cursor : (after ?? 0);
      return { body: { changes: rows.map(changeToJson), next: String(next) } };
    },
  };
}

/** `POST /v1/chats/read`: read receipts for a chat's messages, through the send gate (kind `receipt`). */
export function chatReadRoute(inbox: Pick<Inbox, 'store' | 'chatsOf'>, gate: Pick<SendGate, 'sendReadReceipts'>): Route {
  return {
    method: 'POST',
    path: '/v1/chats/read',
    client: 'send',
    handler: async (req) => {
      const b = objectBody(await req.json(), '{"account","chat","upTo"?}');
      rejectUnknownFields(b, ['account', 'chat', 'upTo']);
      const account = nonEmptyString(b, 'account');
      requireAccount(req.caller, account);
      const chat = nonEmptyString(b, 'chat');
      const upTo = b.upTo === undefined ? undefined : cursorValue(b.upTo, 'upTo');
      const r = normaliseRecipient(chat);
      if ('error' in r) throw new HttpError(400, 'bad_request', `chat: ${r.error}`);
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
  };
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
  return {
    method: 'GET',
    path: '/v1/inbox/:id/media',
    client: 'read',
    handler: async (req): Promise<ApiRawReply> => {
      const params = req.url.searchParams;
      rejectUnknownParams(params, ['account', 'chat']);
      const id = req.params.id!;
      const asked = listParam(params, 'account');
      if (asked.length > 1) throw new HttpError(400, 'bad_request', 'account: give one account');
      const caller = req.caller;
      // A client asking for another account's message learns nothing about it: 404, not 403.
      const accounts = caller.role === 'client' ? (asked.length ? asked.filter((a) => caller.accounts.has(a)) : [...caller.accounts]) : asked;
      const chat = params.get('chat');
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
  };
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
