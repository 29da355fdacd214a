// Routes of the outbox: send, list, show, operator commands, prune, and the audit log.
import type { EventBus, BusEvent } from '../events/bus.js';
import type { Inbox } from '../inbox/inbox.js';
import type { MediaStore } from '../outbox/media-store.js';
import type { SendGate } from '../outbox/send-gate.js';
import { MESSAGE_FIELDS, composeContent } from './compose-message.js';
import { FINAL_STATES, rowToJson, type OutboxRow, type OutboxState } from '../outbox/store.js';
import { HttpError } from './http-error.js';
import { listParam, objectBody, rejectUnknownParams, stringField } from './request-input.js';
import { requireAccount, scopedAccounts } from './roles.js';
import type { ApiRequest, Route } from './server.js';

const STATES: readonly OutboxState[] = ['queued', 'sending', 'unknown', 'sent', 'delivered', 'read', 'held', 'denied', 'failed', 'expired', 'cancelled'];
const WAIT_TARGETS = ['sent', 'delivered', 'read'] as const;
type WaitTarget = (typeof WAIT_TARGETS)[number];
const PROGRESS: Record<string, number> = { sent: 1, delivered: 2, read: 3 };

/** Parses durations like "90s", "15m", "12h", "7d" or plain milliseconds. */
export function parseDuration(v: string): number | null {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(v.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
  return n * unit;
}

/**
 * The `olderThan` of a prune body in milliseconds. A negative age would put the cut-off in the
 * future and delete everything; a fraction is not a number of milliseconds: both are a 400.
 */
export function olderThanMs(raw: unknown): number {
  const body = (raw ?? {}) as { olderThan?: unknown };
  const ms = typeof body.olderThan === 'string' ? parseDuration(body.olderThan) : typeof body.olderThan === 'number' ? body.olderThan : null;
  if (ms === null || !Number.isSafeInteger(ms) || ms < 0) {
    throw new HttpError(400, 'bad_request', `olderThan: expected a duration such as "7d", "12h" or a whole number of milliseconds (0 or more), got ${JSON.stringify(body.olderThan) ?? 'nothing'}`);
  }
  return ms;
}

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
  const id = (req: ApiRequest) => {
    const n = Number(req.params.id);
    if (!Number.isInteger(n) || n <= 0) throw new HttpError(400, 'bad_request', `id: expected a message id (a positive integer), got ${JSON.stringify(req.params.id)}`);
    return n;
  };
  // A row on an account the client may not use is, to that client, a row that does not exist:
  // answering 403 would tell it which ids (and accounts) are there.
  const visibleRow = async (req: ApiRequest) => {
    const row = await gate.store.get(id(req));
    if (!row || (req.caller.role === 'client' && !req.caller.accounts.has(row.account))) throw new HttpError(404, 'not_found', `no message ${req.params.id}`);
    return row;
  };
  const who = (req: ApiRequest) => ({ client: req.clientName, role: req.caller.role, requestId: req.requestId });
  return [
    {
      method: 'POST',
      path: '/v1/messages',
      client: 'send',
      handler: async (req) => {
        const b = objectBody(await req.json());
        for (const k of Object.keys(b)) {
          // `kind` is accepted but not advertised: the kind follows from the content.
          if (!(MESSAGE_FIELDS as readonly string[]).includes(k)) throw new HttpError(400, 'bad_request', `${k}: unknown field (expected ${MESSAGE_FIELDS.filter((f) => f !== 'kind').join(', ')})`);
        }
        for (const k of ['account', 'to'] as const) stringField(b, k, true);
        stringField(b, 'text', false);
        requireAccount(req.caller, b.account as string);
        if (b.kind !== undefined && b.kind !== 'message') throw new HttpError(400, 'bad_request', 'kind: only "message" can be sent through the API (leave it out: the kind follows from what the message carries)');
        if (b.idempotencyKey !== undefined && typeof b.idempotencyKey !== 'string') throw new HttpError(400, 'bad_request', 'idempotencyKey: expected a string');
        rejectUnknownParams(req.url.searchParams, ['wait']);
        const content = await composeContent(b, req.caller, { outbox: gate.store, inbox: deps.inbox, media: deps.media, stateDir: deps.stateDir });
        if (!content && b.text === undefined) throw new HttpError(400, 'bad_request', 'text: required (or one of media, location, contact, reaction, edit, delete)');
        const wait = req.url.searchParams.get('wait');
        if (wait !== null && !(WAIT_TARGETS as readonly string[]).includes(wait)) {
          throw new HttpError(400, 'bad_request', `wait: expected one of ${WAIT_TARGETS.join(', ')}, got ${JSON.stringify(wait)}`);
        }
        // Subscribe before enqueueing, so no event of this row can be missed. The row's id is not
        // known yet, and a repeated idempotency key names a row whose events carry the first
        // request's id, so the subscription is by account and the stream filters by row id.
        const events: BusEvent[] = [];
        let onEvent: ((e: BusEvent) => void) | null = null;
        const follow = deps.followStoreMs ? { everyMs: deps.followStoreMs, read: async (rowId: number) => gate.store.get(rowId) } : undefined;
        const unsubscribe = wait
          ? bus.subscribe({ accounts: [b.account as string], types: ['message.*'] }, (e) => (onEvent ? onEvent(e) : events.push(e)))
          : () => {};
        let result;
        try {
          result = await gate.enqueue({
            account: b.account as string,
            to: b.to as string,
            text: b.text as string,
            ...(content ? { content } : {}),
            idempotencyKey: b.idempotencyKey as string | undefined,
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
          streamUntil(req, accepted, events, (fn) => (onEvent = fn), unsubscribe, wait as WaitTarget, result.row, follow);
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
        streamUntil(req, { ...acceptedBody(current), replayed: true }, events, (fn) => (onEvent = fn), unsubscribe, wait as WaitTarget, current, follow);
      },
    },
    {
      // The bytes of a file to send, streamed into the media store; a message then names it by sha256.
      method: 'POST',
      path: '/v1/media',
      client: 'send',
      handler: async (req) => {
        rejectUnknownParams(req.url.searchParams, []);
        const store = deps.media;
        if (!store) throw new HttpError(503, 'unavailable', 'media: the daemon has no media store');
        const declared = Number(req.header('content-length') ?? NaN);
        if (declared > store.limits.maxBytes) {
          throw new HttpError(413, 'body_too_large', `media: ${declared} bytes is larger than media.maxBytes (${store.limits.maxBytes} bytes)`, { connection: 'close' });
        }
        const stored = await store.put(req.body());
        return { status: 201, body: { sha256: stored.sha256, bytes: stored.bytes, mimetype: stored.detected } };
      },
    },
    {
      method: 'GET',
      path: '/v1/messages',
      client: 'read',
      handler: async (req) => {
        const q = req.url.searchParams;
        rejectUnknownParams(q, ['account', 'state', 'limit', 'before']);
        const state = q.get('state');
        if (state !== null && !(STATES as readonly string[]).includes(state)) throw new HttpError(400, 'bad_request', `state: expected one of ${STATES.join(', ')}`);
        const limit = q.get('limit') === null ? 100 : Number(q.get('limit'));
        if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new HttpError(400, 'bad_request', 'limit: expected 1-10000');
        const before = q.get('before');
        if (before !== null && !/^[1-9]\d{0,14}$/.test(before)) {
          throw new HttpError(400, 'bad_request', `before: expected a message id (a positive integer), got ${JSON.stringify(before)}`);
        }
        const accounts = scopedAccounts(req.caller, listParam(q, 'account'));
        const rows = await gate.store.list({
          ...(accounts ? { accounts } : {}),
          ...(state ? { state: state as OutboxState } : {}),
          limit,
          ...(before !== null ? { beforeId: Number(before) } : {}),
        });
        return { body: { messages: rows.map(rowToJson) } };
      },
    },
    {
      method: 'GET',
      path: '/v1/messages/:id',
      client: 'read',
      handler: async (req) => {
        const row = await visibleRow(req);
        return { body: rowToJson(row) };
      },
    },
    {
      method: 'POST',
      path: '/v1/messages/:id/cancel',
      client: 'send',
      handler: async (req) => {
        const caller = req.caller;
        if (caller.role === 'client') {
          // A client cancels only what it enqueued itself (by its authenticated name).
          const row = await visibleRow(req);
          if (row.clientRole !== 'client' || row.client !== caller.name) {
            throw new HttpError(403, 'forbidden', `message ${row.id} was not enqueued by client "${caller.name}"; cancelling another's message needs the operator role`);
          }
        }
        return { body: rowToJson(await gate.cancel(id(req), who(req))) };
      },
    },
    { method: 'POST', path: '/v1/messages/:id/retry', handler: async (req) => ({ body: rowToJson(await gate.retry(id(req), who(req))) }) },
    { method: 'POST', path: '/v1/messages/:id/approve', handler: async (req) => ({ body: rowToJson(await gate.approve(id(req), who(req))) }) },
    { method: 'POST', path: '/v1/messages/:id/reject', handler: async (req) => ({ body: rowToJson(await gate.reject(id(req), who(req))) }) },
    {
      method: 'POST',
      path: '/v1/messages/prune',
      handler: async (req) => {
        // Finished rows only; pruning also forgets their idempotency keys.
        const ms = olderThanMs(await req.json());
        const deleted = await gate.store.prune(Date.now() - ms, FINAL_STATES);
        // Their media files go too once no row refers to them (and no upload is on its way).
        gate.media?.collect(await gate.store.referencedMedia());
        return { body: { deleted, olderThanMs: ms } };
      },
    },
    {
      method: 'GET',
      path: '/v1/audit',
      client: 'read',
      handler: async (req) => {
        const q = req.url.searchParams;
        rejectUnknownParams(q, ['account', 'limit']);
        const limit = q.get('limit') === null ? 100 : Number(q.get('limit'));
        if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new HttpError(400, 'bad_request', 'limit: expected 1-10000');
        const accounts = scopedAccounts(req.caller, listParam(q, 'account'));
        // A client reads only the decisions taken on its own requests, on its accounts of now.
        const mine = req.caller.role === 'client' ? { client: req.caller.name, role: 'client' as const } : {};
        const entries = await gate.store.audit({ ...(accounts ? { accounts } : {}), ...mine, limit });
        return { body: { audit: entries.map((e) => ({ ...e, at: new Date(e.at).toISOString() })) } };
      },
    },
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
