// Reading a request's input through its route's schema (api-schema/): path parameters, the query
// string and the JSON body are parsed before the handler runs, and the first problem is answered
// as 400 `bad_request` with `field: message`, one wording for each mistake on every route.
import type { z } from 'zod';
import type { FollowSink } from '../inbox/follow.js';
import type { InboxRow } from '../inbox/store.js';
import { inboxRowToJson } from '../inbox/store.js';
import type { RouteSchema } from './api-schema/common.js';
import { HttpError } from './http-error.js';
import type { ApiRequest, NdjsonStream, Route } from './server.js';

type Out<T> = T extends z.ZodType ? z.output<T> : undefined;

/** What a handler gets besides the request: its input as the route's schema parsed it. */
export interface RouteInput<S extends RouteSchema> {
  params: Out<S['params']>;
  query: Out<S['query']>;
  body: Out<S['body']>;
}

/**
 * A route whose handler gets its input parsed by `schema` (which the route also carries, for the
 * document). Parsed in this order: path parameters, body, query string.
 */
export function route<const S extends RouteSchema>(
  def: Omit<Route, 'handler' | 'schema'> & { schema: S; handler: (req: ApiRequest, input: RouteInput<S>) => ReturnType<Route['handler']> },
): Route {
  const { schema, handler, ...rest } = def;
  return {
    ...rest,
    schema,
    handler: async (req) => {
      const params = schema.params ? parseInput(schema.params, req.params) : undefined;
      let body: unknown;
      if (schema.body) {
        const raw = await req.json();
        body = parseInput(schema.body, raw === undefined && schema.bodyOptional ? {} : raw);
      }
      const query = schema.query ? parseQuery(schema.query, req.url.searchParams) : undefined;
      return handler(req, { params, query, body } as RouteInput<S>);
    },
  };
}

/**
 * The first problem of a failed parse as `field: message` (`prefix` names where the value was;
 * a problem with the value as a whole has no field). An unknown key comes first: a misspelt key
 * is often why another is reported missing. `flat` names only the top-level key (a query
 * parameter, not the position in its list).
 */
export function issueText(error: z.ZodError, opts: { prefix?: string; flat?: boolean } = {}): string {
  const issue = error.issues.find((i) => i.code === 'unrecognized_keys') ?? error.issues[0]!;
  const path = opts.flat ? issue.path.slice(0, 1) : issue.path;
  const field = [...(opts.prefix ? [opts.prefix] : []), ...path.map(String)].join('.');
  return field ? `${field}: ${issue.message}` : issue.message;
}

/** `raw` parsed by `schema`; throws HttpError 400 `bad_request` naming the first problem. */
export function parseInput<S extends z.ZodType>(schema: S, raw: unknown, opts: { prefix?: string; flat?: boolean } = {}): z.output<S> {
  const r = schema.safeParse(raw);
  if (!r.success) throw new HttpError(400, 'bad_request', issueText(r.error, opts));
  return r.data;
}

/** The query string parsed by a strictQuery schema. */
export function parseQuery<S extends z.ZodObject>(schema: S, params: URLSearchParams): z.output<S> {
  return parseInput(schema, queryObject(params, schema), { flat: true });
}

/**
 * The query string as an object for `schema`: a list parameter (an array in the schema) gets
 * every value, comma-separated ones split and blanks dropped (absent when none is left); any
 * other the first value. Unknown parameters are kept, for the schema to refuse.
 */
export function queryObject(params: URLSearchParams, schema: z.ZodObject): Record<string, string | string[]> {
  const lists = listKeys(schema);
  // No prototype: `?__proto__=1` must be a key the schema sees (and refuses), not a no-op.
  const out: Record<string, string | string[]> = Object.create(null);
  for (const key of new Set(params.keys())) {
    if (!lists.has(key)) {
      out[key] = params.get(key)!;
      continue;
    }
    const values = params
      .getAll(key)
      .flatMap((v) => v.split(','))
      .map((v) => v.trim())
      .filter((v) => v !== '');
    if (values.length) out[key] = values;
  }
  return out;
}

const listKeyCache = new WeakMap<z.ZodObject, ReadonlySet<string>>();

/** The keys of a query schema whose values are lists: those whose input is an array. */
function listKeys(schema: z.ZodObject): ReadonlySet<string> {
  let keys = listKeyCache.get(schema);
  if (!keys) {
    keys = new Set(Object.entries(schema.shape).filter(([, s]) => acceptsArray(s as z.ZodType)).map(([k]) => k));
    listKeyCache.set(schema, keys);
  }
  return keys;
}

function acceptsArray(s: z.ZodType): boolean {
  const def = s._zod.def as { type: string; innerType?: z.ZodType; in?: z.ZodType };
  if (def.type === 'array') return true;
  if (def.innerType) return acceptsArray(def.innerType); // optional, default
  if (def.in) return acceptsArray(def.in); // a pipe reads what its input reads
  return false;
}

/** Inbox rows onto an NDJSON response, as the follow and consumer stream routes send them. */
export function inboxStreamSink(stream: NdjsonStream): FollowSink & { close(): void } {
  return {
    write: (row: InboxRow) => stream.write(inboxRowToJson(row)),
    drained: () => stream.drained(),
    get closed() {
      return stream.closed;
    },
    onClose: (fn) => stream.onClose(fn),
    close: () => stream.end(),
  };
}
