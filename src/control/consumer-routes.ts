// Routes of inbox consumers: the stream a stream consumer reads and acknowledges, and managing
// consumers (list with lag, add, remove, dead letters).
import { ConsumerSpecSchema } from '../config/schema.js';
import { ConsumerError, type ConsumerService } from '../inbox/consumer-service.js';
import { HttpError } from './http-error.js';
import { cursorValue, inboxStreamSink, nonEmptyString, objectBody, rejectUnknownFields, rejectUnknownParams } from './request-input.js';
import type { Caller } from './roles.js';
import { inboxRowToJson } from '../inbox/store.js';
import type { Route } from './server.js';

const STATUS: Record<ConsumerError['code'], number> = { not_found: 404, conflict: 409, bad_request: 400 };

function httpError(err: unknown): unknown {
  return err instanceof ConsumerError ? new HttpError(STATUS[err.code], err.code, err.message) : err;
}

async function mapped<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw httpError(err);
  }
}

/** The consumer routes. */
export function consumerRoutes(consumers: ConsumerService): Route[] {
  // A client reads a stream consumer only when every account the consumer covers is its own.
  const mayRead = async (caller: Caller, name: string) => {
    if (caller.role === 'operator') return;
    const view = await consumers.store.get(name);
    if (!view) return; // the service answers 404
    if (!view.accounts?.length) {
      throw new HttpError(403, 'forbidden', `consumer "${name}" covers every account; reading it needs the operator role (give the consumer "accounts" within client "${caller.name}"'s)`);
    }
    if (view.accounts.some((a) => !caller.accounts.has(a))) {
      throw new HttpError(403, 'forbidden', `consumer "${name}" covers accounts that are not client "${caller.name}"'s; reading it needs the operator role`);
    }
  };
  return [
    {
      method: 'GET',
      path: '/v1/inbox/stream',
      subscriber: true,
      client: 'read',
      handler: async (req) => {
        rejectUnknownParams(req.url.searchParams, ['consumer']);
        const name = req.url.searchParams.get('consumer');
        if (!name) throw new HttpError(400, 'bad_request', 'consumer: required (the name of a stream consumer)');
        await mayRead(req.caller, name);
        await mapped(() => consumers.openStream(name, () => inboxStreamSink(req.openStream())));
      },
    },
    {
      // A pull read of a stream consumer (for callers that cannot hold a stream open); acknowledge as for a stream.
      method: 'GET',
      path: '/v1/inbox/next',
      client: 'read',
      handler: async (req) => {
        const q = req.url.searchParams;
        rejectUnknownParams(q, ['consumer', 'limit']);
        const name = q.get('consumer');
        if (!name) throw new HttpError(400, 'bad_request', 'consumer: required (the name of a stream consumer)');
        const limitRaw = q.get('limit');
        const limit = limitRaw === null ? 100 : Number(limitRaw);
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new HttpError(400, 'bad_request', `limit: expected 1-1000, got ${JSON.stringify(limitRaw)}`);
        await mayRead(req.caller, name);
        const { rows, committed } = await mapped(() => consumers.next(name, limit));
        return { body: { consumer: name, committed: String(committed), messages: rows.map(inboxRowToJson), next: String(rows.at(-1)?.cursor ?? committed) } };
      },
    },
    {
      method: 'POST',
      path: '/v1/inbox/ack',
      client: 'read',
      handler: async (req) => {
        const b = objectBody(await req.json(), '{"consumer","cursor"}');
        rejectUnknownFields(b, ['consumer', 'cursor']);
        const consumer = nonEmptyString(b, 'consumer');
        await mayRead(req.caller, consumer);
        const cursor = cursorValue(b.cursor, 'cursor', 'as the stream gave it (digits)');
        const committed = await mapped(() => consumers.ack(consumer, cursor));
        return { body: { consumer, cursor: String(committed) } };
      },
    },
    {
      method: 'GET',
      path: '/v1/consumers',
      handler: async () => ({ body: { consumers: await consumers.list() } }),
    },
    {
      method: 'POST',
      path: '/v1/consumers',
      handler: async (req) => {
        const parsed = ConsumerSpecSchema.safeParse(await req.json());
        if (!parsed.success) {
          const issue = parsed.error.issues[0]!;
          throw new HttpError(400, 'bad_request', `${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`);
        }
        return { status: 201, body: await mapped(() => consumers.add(parsed.data)) };
      },
    },
    {
      method: 'GET',
      path: '/v1/consumers/:name',
      handler: async (req) => ({ body: await mapped(() => consumers.get(req.params.name!)) }),
    },
    {
      method: 'DELETE',
      path: '/v1/consumers/:name',
      handler: async (req) => {
        await mapped(() => consumers.remove(req.params.name!));
        return { body: { removed: req.params.name } };
      },
    },
    {
      method: 'GET',
      path: '/v1/consumers/:name/dead-letters',
      handler: async (req) => {
        const view = await mapped(() => consumers.get(req.params.name!));
        const letters = (await consumers.store.deadLetters(view.name)).map((d) => ({ cursor: String(d.cursor), reason: d.reason, at: new Date(d.at).toISOString() }));
        return { body: { consumer: view.name, deadLetters: letters } };
      },
    },
  ];
}
