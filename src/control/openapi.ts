// The control API as an OpenAPI 3.1 document, built from the route table's schemas (api-schema/):
// the routes that validate requests are the routes described, so the two cannot drift. The
// document depends only on the table, so the same table gives the same bytes (docs/openapi.json
// is checked against it).
import { z } from 'zod';
import { VERSION } from '../version.js';
import { ErrorBody, type RouteSchema } from './api-schema/common.js';
import type { Route } from './server.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const METHOD_ORDER = ['GET', 'PUT', 'POST', 'DELETE'] as const;
const SUCCESS: Record<number, string> = { 200: 'OK', 201: 'Created', 202: 'Accepted' };

/** The OpenAPI document of a route table. Throws when a route has no schema. */
export function openApiDocument(routes: readonly Route[]): JsonObject {
  const components = new Components();
  const errorRef = components.schema(ErrorBody, 'output');
  const paths: Record<string, Record<string, Json>> = {};
  const sorted = [...routes].sort((a, b) => compare(a.path, b.path) || METHOD_ORDER.indexOf(a.method) - METHOD_ORDER.indexOf(b.method));
  const noHead = sorted.filter((r) => r.noHead).map((r) => `${r.method} ${r.path}`);
  for (const route of sorted) {
    if (!route.schema) throw new Error(`route ${route.method} ${route.path} has no schema: give it one (api-schema/) so the document can describe it`);
    const path = route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    (paths[path] ??= {})[route.method.toLowerCase()] = operation(route, route.schema, components, errorRef);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'wa-supervisor control API',
      version: VERSION,
      description:
        'HTTP/1.1 over a unix socket. The operator socket (mode 0600) needs no token: whoever can open it is the operator. ' +
        'The client socket needs `Authorization: Bearer <token>` on every request, and a client may use only the routes whose ' +
        '`x-wa-permission` it was given (`send`, `read`, `events`; `any`: every client), on its own accounts; `operator` routes are ' +
        'refused to it with 403. Every answer carries X-WA-Supervisor-Version and X-Request-Id; errors are `{"error": {"code", "message"}}`. ' +
        'NDJSON answers (`application/x-ndjson`) carry one JSON value of the schema shown per line, flushed as it happens; ' +
        '`x-wa-subscriber` marks the long-lived streams, which count against the limit of open streams (503 `too_many_subscribers`). ' +
        `Every GET route answers HEAD too${noHead.length ? `, except ${noHead.join(', ')} (405: its answer hands something out)` : ''}.`,
    },
    servers: [{ url: 'http://localhost', description: 'the daemon\'s unix socket (curl --unix-socket PATH http://localhost/v1/...)' }],
    paths: sortKeys(paths),
    components: {
      schemas: components.schemas(),
      responses: {
        BadRequest: {
          description: 'The input is not what the route takes: `bad_request` names the field and the problem; `bad_json` and `too_deep` a body that cannot be read',
          content: { 'application/json': { schema: errorRef } },
        },
        Error: { description: 'An error: its code, and a message naming the problem', content: { 'application/json': { schema: errorRef } } },
        Forbidden: {
          description: 'A client on a route or an account it may not use (`forbidden`): the message names the role or permission needed (x-wa-permission)',
          content: { 'application/json': { schema: errorRef } },
        },
      },
      securitySchemes: {
        clientToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'A client\'s token (its SHA-256 is in the config\'s clients): required on the client socket; on the operator socket it makes the request that client\'s.',
        },
      },
    },
  };
}

/** The document as the file and the route serve it. */
export function openApiJson(doc: JsonObject): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}

function operation(route: Route, s: RouteSchema, components: Components, errorRef: Json): JsonObject {
  const permission = route.client ?? 'operator';
  const parameters: Json[] = [...parameterList(s.params, 'path', components), ...parameterList(s.query, 'query', components)];
  const op: JsonObject = {
    operationId: operationId(route),
    summary: s.summary,
    ...(s.description ? { description: s.description } : {}),
    tags: [tagOf(route.path)],
    'x-wa-permission': permission,
    ...(route.subscriber ? { 'x-wa-subscriber': true } : {}),
    // On the operator socket no credentials; a client's token is needed on the client socket.
    security: permission === 'operator' ? [{}] : [{}, { clientToken: [] }],
    ...(parameters.length ? { parameters } : {}),
  };
  // A body that may be left out is read as {}: the document calls it optional only when {} is enough.
  if (s.body) op.requestBody = { required: !(s.bodyOptional && s.body.safeParse({}).success), content: { 'application/json': { schema: components.schema(s.body, 'input') } } };
  else if (s.raw?.request) op.requestBody = { required: true, content: { [s.raw.request]: {} } };
  op.responses = responses(route, s, components, errorRef);
  return op;
}

function responses(route: Route, s: RouteSchema, components: Components, errorRef: Json): JsonObject {
  const success = new Map<number, { description: string; content: JsonObject }>();
  const add = (status: number, description: string, type: string, body: Json) => {
    const r = success.get(status) ?? { description, content: {} };
    if (success.has(status)) r.description = `${r.description}; or ${description}`;
    r.content[type] = body;
    success.set(status, r);
  };
  const status = s.status ?? 200;
  const answer = s.answer ?? SUCCESS[status] ?? 'OK';
  if (s.response) add(status, answer, 'application/json', { schema: components.schema(s.response, 'output') });
  if (s.raw?.response) add(status, answer, s.raw.response, {});
  for (const alt of s.alternatives ?? []) add(alt.status, alt.answer, 'application/json', { schema: components.schema(alt.response, 'output') });
  if (s.stream) add(200, s.response ? 'the stream asked for (NDJSON, one value per line)' : 'A stream (NDJSON, one value per line)', 'application/x-ndjson', { schema: components.schema(s.stream, 'output') });
  if (!success.size) throw new Error(`route ${route.method} ${route.path} describes no answer: give its schema a response, stream or raw response`);
  const out: JsonObject = {};
  for (const [code, r] of [...success].sort(([a], [b]) => a - b)) out[String(code)] = r;
  const error = (description: string): Json => ({ description, content: { 'application/json': { schema: errorRef } } });
  if (s.params || s.query || s.body) out['400'] = { $ref: '#/components/responses/BadRequest' };
  if (route.client !== 'any') out['403'] = { $ref: '#/components/responses/Forbidden' };
  for (const [code, when] of Object.entries(s.errors ?? {}).sort(([a], [b]) => Number(a) - Number(b))) out[code] = error(when);
  out.default = { $ref: '#/components/responses/Error' };
  return out;
}

/** Path or query parameters from a strict object schema. */
function parameterList(schema: z.ZodObject | undefined, where: 'path' | 'query', components: Components): Json[] {
  if (!schema) return [];
  const json = components.schema(schema, 'input') as JsonObject;
  const required = new Set((json.required as string[] | undefined) ?? []);
  return Object.entries((json.properties as JsonObject | undefined) ?? {}).map(([name, prop]) => {
    const { description, ...rest } = prop as JsonObject;
    return {
      name,
      in: where,
      required: where === 'path' || required.has(name),
      ...(description !== undefined ? { description } : {}),
      schema: rest,
      ...(rest.type === 'array' ? { style: 'form', explode: true } : {}),
    };
  });
}

/** `GET /v1/accounts/:id/policy` → `getAccountsByIdPolicy`. */
function operationId(route: Route): string {
  const words = route.path
    .split('/')
    .filter((seg) => seg !== '' && seg !== 'v1')
    .map((seg) => (seg.startsWith(':') ? `by-${seg.slice(1)}` : seg))
    .flatMap((seg) => seg.split(/[^A-Za-z0-9]+/))
    .filter((w) => w !== '');
  return [route.method.toLowerCase(), ...words.map((w) => w[0]!.toUpperCase() + w.slice(1))].join('');
}

function tagOf(path: string): string {
  return path.split('/')[2] ?? 'v1';
}

/** The named schemas (`.meta({ id })`) met while converting, kept once under components.schemas. */
class Components {
  readonly #named = new Map<string, Json>();

  /** A schema as JSON Schema 2020-12, its named parts referring to components.schemas. */
  schema(schema: z.ZodType, io: 'input' | 'output'): Json {
    const json = z.toJSONSchema(schema, { io, target: 'draft-2020-12', override: withDefault }) as JsonObject;
    delete json.$schema;
    const defs = (json.$defs ?? {}) as JsonObject;
    delete json.$defs;
    for (const [id, def] of Object.entries(defs)) {
      const text = JSON.stringify(rewriteRefs(def));
      const known = this.#named.get(id);
      if (known !== undefined && JSON.stringify(known) !== text) throw new Error(`two different schemas are named ${id} (one read as a request, one as an answer?)`);
      this.#named.set(id, JSON.parse(text) as Json);
    }
    return rewriteRefs(json);
  }

  schemas(): JsonObject {
    return sortKeys(Object.fromEntries(this.#named));
  }
}

/** A parameter's default, which zod leaves out when what it wraps is read through a transform (`intParamOr`). */
function withDefault(ctx: { zodSchema: { _zod: { def: unknown } }; jsonSchema: Record<string, unknown> }): void {
  const def = ctx.zodSchema._zod.def as { type: string; defaultValue?: unknown };
  if (def.type === 'default' && ctx.jsonSchema.default === undefined) ctx.jsonSchema.default = def.defaultValue;
}

function rewriteRefs(value: Json): Json {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (value === null || typeof value !== 'object') return value;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(value)) out[k] = k === '$ref' && typeof v === 'string' ? v.replace(/^#\/\$defs\//, '#/components/schemas/') : rewriteRefs(v);
  return out;
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => compare(a, b)));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
