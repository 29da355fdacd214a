// Routes of inbox consumers: the stream a stream consumer reads and acknowledges, and managing
// consumers (list with lag, add, remove, dead letters).
import { ConsumerSpecSchema } from '../config/schema.js';
import { ANY_READER, ConsumerError, type ConsumerService, type ReadCheck } from '../inbox/consumer-service.js';
import { AckBody, AckResult, ConsumerList, ConsumerParams, ConsumerRemoved, ConsumerView, DeadLetters, NextPage, NextQuery, StreamQuery } from './api-schema/consumers.js';
import { InboxMessage } from './api-schema/inbox.js';
import { HttpError } from './http-error.js';
import { inboxStreamSink, route } from './request-input.js';
import { consumerReadRefusal, type Caller } from './roles.js';
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
  // A client reads a stream consumer only when every account the consumer covers is its own,
  // judged by the service on the row it reads with (an unknown consumer is its 404).
  const mayRead = (caller: Caller): ReadCheck =>
    caller.role === 'operator'
      ? ANY_READER
      : (c) => {
          const refusal = consumerReadRefusal(caller, c.name, c.accounts);
          if (refusal) throw new HttpError(403, 'forbidden', refusal);
        };
  return [
    route({
      method: 'GET',
      path: '/v1/inbox/stream',
      subscriber: true,
      client: 'read',
      schema: {
        summary: 'Read a stream consumer: every message after its committed cursor, then new ones (NDJSON)',
        description: 'One reader per consumer at a time. A client reads only consumers whose accounts are all its own.',
        query: StreamQuery,
        stream: InboxMessage,
        errors: { 409: 'a reader is already connected' },
      },
      handler: async (req, { query }) => {
        await mapped(() => consumers.openStream(query.consumer, () => inboxStreamSink(req.openStream()), mayRead(req.caller)));
      },
    }),
    route({
      // A pull read of a stream consumer (for callers that cannot hold a stream open); acknowledge as for a stream.
      method: 'GET',
      path: '/v1/inbox/next',
      client: 'read',
      noHead: true,
      schema: {
        summary: 'Read a page of a stream consumer after its committed cursor (a pull read)',
        description: 'Acknowledge with POST /v1/inbox/ack, as for the stream; refused while a stream reader is connected.',
        query: NextQuery,
        response: NextPage,
        errors: { 409: 'a stream reader is connected' },
      },
      handler: async (req, { query }) => {
        const name = query.consumer;
        const { rows, committed } = await mapped(() => consumers.next(name, query.limit, mayRead(req.caller)));
        return { body: { consumer: name, committed: String(committed), messages: rows.map(inboxRowToJson), next: String(rows.at(-1)?.cursor ?? committed) } };
      },
    }),
    route({
      method: 'POST',
      path: '/v1/inbox/ack',
      client: 'read',
      schema: {
        summary: 'Acknowledge a stream consumer up to a cursor',
        description: 'An older cursor than the committed one changes nothing; a cursor this consumer\'s readers were never handed is a 400.',
        body: AckBody,
        response: AckResult,
        errors: { 409: 'the consumer changed (removed and added again, or its accounts) while it was acknowledged: read it again' },
      },
      handler: async (req, { body }) => {
        const committed = await mapped(() => consumers.ack(body.consumer, body.cursor, mayRead(req.caller)));
        return { body: { consumer: body.consumer, cursor: String(committed) } };
      },
    }),
    route({
      method: 'GET',
      path: '/v1/consumers',
      schema: { summary: 'List the inbox consumers with their lag', response: ConsumerList },
      handler: async () => ({ body: { consumers: await consumers.list() } }),
    }),
    route({
      method: 'POST',
      path: '/v1/consumers',
      schema: {
        summary: 'Add a consumer (a `consumers[]` entry of the config)',
        body: ConsumerSpecSchema,
        status: 201,
        response: ConsumerView,
        errors: { 409: 'the name is taken' },
      },
      handler: async (_req, { body }) => ({ status: 201, body: await mapped(() => consumers.add(body)) }),
    }),
    route({
      method: 'GET',
      path: '/v1/consumers/:name',
      schema: { summary: 'One consumer with its lag', params: ConsumerParams, response: ConsumerView },
      handler: async (_req, { params }) => ({ body: await mapped(() => consumers.get(params.name)) }),
    }),
    route({
      method: 'DELETE',
      path: '/v1/consumers/:name',
      schema: { summary: 'Remove a consumer added through the API', params: ConsumerParams, response: ConsumerRemoved, errors: { 409: 'the consumer is in the config' } },
      handler: async (_req, { params }) => {
        await mapped(() => consumers.remove(params.name));
        return { body: { removed: params.name } };
      },
    }),
    route({
      method: 'GET',
      path: '/v1/consumers/:name/dead-letters',
      schema: { summary: 'The messages a webhook consumer gave up on', params: ConsumerParams, response: DeadLetters },
      handler: async (_req, { params }) => {
        const view = await mapped(() => consumers.get(params.name));
        const letters = (await consumers.store.deadLetters(view.name)).map((d) => ({ cursor: String(d.cursor), reason: d.reason, at: new Date(d.at).toISOString() }));
        return { body: { consumer: view.name, deadLetters: letters } };
      },
    }),
  ];
}
