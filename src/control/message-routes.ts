// Routes of the outbox: send, list, show, operator commands, prune, and the audit log.
import type { EventBus, BusEvent } from '../events/bus.js';
import type { Inbox } from '../inbox/inbox.js';
import type { MediaStore } from '../outbox/media-store.js';
import type { SendGate } from '../outbox/send-gate.js';
import {
  Accepted,
  AuditList,
  AuditQuery,
  MediaUploaded,
  MessageIdParams,
  MessageList,
  MessagePruneBody,
  MessageRow,
  MessagesQuery,
  PruneResult,
  SendBody,
  SendQuery,
  WAIT_TARGETS,
  WaitLine,
} from './api-schema/messages.js';
import { NoQuery } from './api-schema/daemon.js';
import { composeContent } from './compose-message.js';
import { FINAL_STATES, rowToJson, type OutboxRow } from '../outbox/store.js';
import { HttpError } from './http-error.js';
import { route } from './request-input.js';
import { requireAccount, scopedAccounts } from './roles.js';
import type { ApiRequest, Route } from './server.js';

type WaitTarget = (typeof WAIT_TARGETS)[number];
const PROGRESS: Record<string, number> = { sent: 1, delivered: 2, read: 3 };

/** The outbox routes. */
export function messageRoutes(
  gate: SendGate,
  bus: Pick<EventBus, 'subscribe'>,
  deps: {
    inbox?: Pick<Inbox, 'store' | 'chatsOf'> | undefined;
    media?: MediaStore | undefined;
    stateDir?: string | undefined;
    /**
     * In a cluster: how often `?wait` reads the row from the shared store. Another daemon (the
     * account's owner) sends it, and its events are on that daemon's bus, not this one's.
     */
    followStoreMs?: number | undefined;
  } = {},
): Route[] {
  // A row on an account the client may not use is, to that client, a row that does not exist:
  // answering 403 would tell it which ids (and accounts) are there.
  const visibleRow = async (req: ApiRequest, id: number) => {
    const row = await gate.store.get(id);
    if (!row || (req.caller.role === 'client' && !req.caller.accounts.has(row.account))) throw new HttpError(404, 'not_found', `no message ${req.params.id}`);
    return row;
  };
  const who = (req: ApiRequest) => ({ client: req.clientName, role: req.caller.role, requestId: req.requestId });
  const command = (verb: 'retry' | 'approve' | 'reject', summary: string): Route =>
    route({
      method: 'POST',
      path: `/v1/messages/:id/${verb}`,
      schema: { summary, params: MessageIdParams, response: MessageRow, errors: { 409: `the message is in a state it cannot ${verb === 'retry' ? 'be retried' : `be ${verb}d`} from` } },
      handler: async (req, { params }) => ({ body: rowToJson(await gate[verb](params.id, who(req))) }),
    });
  return [
    route({
      method: 'POST',
      path: '/v1/messages',
      client: 'send',
      schema: {
        summary: 'Send a message: enqueued, committed, then answered',
        description:
          'Besides text, one of media, location, contact, reaction, edit, delete; replyTo quotes a message of the chat. With ?wait= the answer is an NDJSON stream: first {"type":"accepted",...}, then the message\'s events until it reaches the state asked for or one it cannot leave.',
        body: SendBody,
        query: SendQuery,
        status: 202,
        answer: 'Accepted: the message is committed to the outbox',
        response: Accepted,
        stream: WaitLine,
        alternatives: [{ status: 200, answer: 'A repeated idempotency key: the message it first enqueued', response: Accepted }],
        errors: { 409: 'a message pointed at has not been sent', 503: 'media: the daemon has no media store' },
      },
      handler: async (req, { body: b, query }) => {
        requireAccount(req.caller, b.account);
        const content = await composeContent(b, req.caller, { outbox: gate.store, inbox: deps.inbox, media: deps.media, stateDir: deps.stateDir });
        if (!content && b.text === undefined) throw new HttpError(400, 'bad_request', 'text: required (or one of media, location, contact, reaction, edit, delete)');
        const wait = query.wait;
        // Subscribe before enqueueing, so no event of this row can be missed. The row's id is not
        // known yet, and a repeated idempotency key names a row whose events carry the first
        // request's id, so the subscription is by account and the stream filters by row id.
        const events: BusEvent[] = [];
        let onEvent: ((e: BusEvent) => void) | null = null;
        const follow = deps.followStoreMs ? { everyMs: deps.followStoreMs, read: async (rowId: number) => gate.store.get(rowId) } : undefined;
        const unsubscribe = wait
          ? bus.subscribe({ accounts: [b.account], types: ['message.*'] }, (e) => (onEvent ? onEvent(e) : events.push(e)))
          : () => {};
        let result;
        try {
          result = await gate.enqueue({
            account: b.account,
            to: b.to,
            text: b.text as string,
            ...(content ? { content } : {}),
            idempotencyKey: b.idempotencyKey,
            requestId: req.requestId,
            client: req.clientName,
            role: req.caller.role,
          });
        } catch (err) {
          unsubscribe();
          throw err;
        }
        const accepted = acceptedBody(result.row);
        if (!wait) return { status: result.created ? 202 : 200, body: accepted };
        if (result.created) {
          streamUntil(req, accepted, events, (fn) => (onEvent = fn), unsubscribe, wait, result.row, follow);
          return;
        }
        // A replay: the row may have moved since it was read, and the buffered events are older
        // than what the store holds now. From here on events arrive live (nothing runs between
        // these lines), so the row as stored now plus what follows is its whole progress.
        // Events that arrive while it is read again are kept and passed on after it.
        events.length = 0;
        let current: OutboxRow;
        try {
          current = (await gate.store.get(result.row.id)) ?? result.row;
        } catch (err) {
          unsubscribe(); // no stream opened: nothing else would end the subscription
          throw err;
        }
        streamUntil(req, { ...acceptedBody(current), replayed: true }, events, (fn) => (onEvent = fn), unsubscribe, wait, current, follow);
      },
    }),
    route({
      // The bytes of a file to send, streamed into the media store; a message then names it by sha256.
      method: 'POST',
      path: '/v1/media',
      client: 'send',
      schema: {
        summary: 'Upload a file to send: the raw bytes, streamed into the media store',
        description: 'A message then names it by media.sha256; a file no message names is deleted after an hour.',
        query: NoQuery,
        raw: { request: 'application/octet-stream' },
        status: 201,
        answer: 'Stored',
        response: MediaUploaded,
        errors: { 413: 'larger than media.maxBytes', 503: 'the daemon has no media store', 507: 'the media store is full' },
      },
      handler: async (req) => {
        const store = deps.media;
        if (!store) throw new HttpError(503, 'unavailable', 'media: the daemon has no media store');
        const declared = Number(req.header('content-length') ?? NaN);
        if (declared > store.limits.maxBytes) {
          throw new HttpError(413, 'body_too_large', `media: ${declared} bytes is larger than media.maxBytes (${store.limits.maxBytes} bytes)`, { connection: 'close' });
        }
        const stored = await store.put(req.body());
        return { status: 201, body: { sha256: stored.sha256, bytes: stored.bytes, mimetype: stored.detected } };
      },
    }),
    route({
      method: 'GET',
      path: '/v1/messages',
      client: 'read',
      schema: { summary: 'Outbound messages, newest first', query: MessagesQuery, response: MessageList },
      handler: async (req, { query }) => {
        const accounts = scopedAccounts(req.caller, query.account ?? []);
        const rows = await gate.store.list({
          ...(accounts ? { accounts } : {}),
          ...(query.state ? { state: query.state } : {}),
          limit: query.limit,
          ...(query.before !== undefined ? { beforeId: query.before } : {}),
        });
        return { body: { messages: rows.map(rowToJson) } };
      },
    }),
    route({
      method: 'GET',
      path: '/v1/messages/:id',
      client: 'read',
      schema: { summary: 'One outbound message with its state, attempts and times', params: MessageIdParams, response: MessageRow },
      handler: async (req, { params }) => ({ body: rowToJson(await visibleRow(req, params.id)) }),
    }),
    route({
      method: 'POST',
      path: '/v1/messages/:id/cancel',
      client: 'send',
      schema: {
        summary: 'Cancel a message not sent yet',
        description: 'A client cancels only what it enqueued itself.',
        params: MessageIdParams,
        response: MessageRow,
        errors: { 409: 'the message is past cancelling' },
      },
      handler: async (req, { params }) => {
        const caller = req.caller;
        if (caller.role === 'client') {
          // A client cancels only what it enqueued itself (by its authenticated name).
          const row = await visibleRow(req, params.id);
          if (row.clientRole !== 'client' || row.client !== caller.name) {
            throw new HttpError(403, 'forbidden', `message ${row.id} was not enqueued by client "${caller.name}"; cancelling another's message needs the operator role`);
          }
        }
        return { body: rowToJson(await gate.cancel(params.id, who(req))) };
      },
    }),
    command('retry', 'Send a failed or expired message again'),
    command('approve', 'Approve a held message: it is sent'),
    command('reject', 'Reject a held message: it is not sent'),
    route({
      method: 'POST',
      path: '/v1/messages/prune',
      schema: {
        summary: 'Delete finished messages older than an age (and forget their idempotency keys)',
        body: MessagePruneBody,
        response: PruneResult,
      },
      handler: async (_req, { body }) => {
        // Finished rows only; pruning also forgets their idempotency keys.
        const ms = body.olderThan;
        const deleted = await gate.store.prune(Date.now() - ms, FINAL_STATES);
        // Their media files go too once no row refers to them (and no upload is on its way).
        gate.media?.collect(await gate.store.referencedMedia());
        return { body: { deleted, olderThanMs: ms } };
      },
    }),
    route({
      method: 'GET',
      path: '/v1/audit',
      client: 'read',
      schema: { summary: 'Policy decisions, newest first', description: 'A client reads only the decisions taken on its own requests.', query: AuditQuery, response: AuditList },
      handler: async (req, { query }) => {
        const accounts = scopedAccounts(req.caller, query.account ?? []);
        // A client reads only the decisions taken on its own requests, on its accounts of now.
        const mine = req.caller.role === 'client' ? { client: req.caller.name, role: 'client' as const } : {};
        const entries = await gate.store.audit({ ...(accounts ? { accounts } : {}), ...mine, limit: query.limit });
        return { body: { audit: entries.map((e) => ({ ...e, at: new Date(e.at).toISOString() })) } };
      },
    }),
  ];
}

function acceptedBody(row: OutboxRow): Record<string, unknown> {
  return { id: row.id, messageId: row.messageId, state: row.state, ...(row.reason ? { reason: row.reason } : {}) };
}

/**
 * Streams the row's message events until it reaches `target` or a state it cannot leave on its
 * own. A row already there (a replay of a finished message, say) is answered at once.
 */
function streamUntil(
  req: ApiRequest,
  accepted: Record<string, unknown>,
  early: BusEvent[],
  setListener: (fn: (e: BusEvent) => void) => void,
  unsubscribe: () => void,
  target: WaitTarget,
  row: OutboxRow,
  follow?: { everyMs: number; read: (id: number) => Promise<OutboxRow | null> },
): void {
  const stream = req.openStream();
  stream.onClose(unsubscribe);
  stream.write({ type: 'accepted', ...accepted });
  const done = (state: string) =>
    (PROGRESS[state] ?? 0) >= PROGRESS[target]! || ['held', 'denied', 'failed', 'expired', 'cancelled'].includes(state);
  // The bus's events as they come; in a cluster also the row as the store has it, each state the
  // bus has not shown yet, forward only (the owner's events are on its own bus).
  let shown: string = row.state;
  const show = (state: string, event: Record<string, unknown>) => {
    shown = state;
    stream.write(event);
    if (done(state)) stream.end();
  };
  const onEvent = (e: BusEvent) => {
    if (stream.closed || e.id !== row.id) return;
    // With the store followed too, a progress state it showed already is not shown again.
    if (follow && e.state === shown && PROGRESS[shown]) return;
    show(String(e.state), e);
  };
  // From the store only what moves the wait on: more progress (sent, delivered, read) or an end.
  // The states in between (sending, a put-back to queued) are the owner's to tell, and a read
  // that answers late must not show a step back.
  const onStored = (state: string, event: Record<string, unknown>) => {
    if (stream.closed || state === shown) return;
    if ((PROGRESS[state] ?? 0) > (PROGRESS[shown] ?? 0) || (!PROGRESS[state] && done(state))) show(state, event);
  };
  setListener(onEvent);
  if (done(row.state)) {
    stream.end();
    return;
  }
  for (const e of early) onEvent(e);
  if (!follow || stream.closed) return;
  // One read at a time, the next `everyMs` after the last answered.
  let timer: NodeJS.Timeout | null = null;
  const next = () => {
    timer = setTimeout(() => {
      follow.read(row.id).then(
        (r) => {
          if (r) {
            const { account, messageId, to, kind, state, reason, wireSends } = r;
            onStored(state, { type: `message.${state}`, at: new Date().toISOString(), account, id: r.id, messageId, to, kind, state, ...(reason ? { reason } : {}), wireSends });
          }
          if (!stream.closed) next();
        },
        () => {
          if (!stream.closed) next(); // the store did not answer: asked again at the next turn
        },
      );
    }, follow.everyMs);
  };
  next();
  stream.onClose(() => {
    if (timer) clearTimeout(timer);
  });
}
