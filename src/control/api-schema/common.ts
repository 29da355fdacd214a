// What every route's schema is made of: the shape of a route's documentation and input, the
// error body, and the field builders that keep one wording per mistake across routes (a client
// sees the same message for the same error everywhere). Requests are validated with these
// schemas; responses are described by them (the document of openapi.ts), not checked at run time.
import { z } from 'zod';
import type { ApiErrorCode } from '../http-error.js';

/** A route's request and answer, for validation (params, query, body) and for the document. */
export interface RouteSchema {
  /** One line: what the route does. */
  summary: string;
  description?: string;
  /** The `:name` segments of the path, as strings. */
  params?: z.ZodObject;
  /** Query parameters (strictQuery); a parameter whose schema is an array is a list, repeated or comma-separated. */
  query?: z.ZodObject;
  /** The JSON body (strictBody for an object). */
  body?: z.ZodType;
  /** The body may be left out: it is then read as `{}`. */
  bodyOptional?: boolean;
  /** The success status, 200 unless said. */
  status?: number;
  /** What the success answer is, in a few words (the document needs one). */
  answer?: string;
  /** The JSON answer. */
  response?: z.ZodType;
  /** One line of an NDJSON answer (200, `application/x-ndjson`): the whole answer of a stream route, or the one asked for with `response` present. */
  stream?: z.ZodType;
  /** Bodies that are not JSON: the content type of the request and of the answer. */
  raw?: { request?: string; response?: string };
  /** Other success answers (a replayed request, say). */
  alternatives?: ReadonlyArray<{ status: number; answer: string; response: z.ZodType }>;
  /** Errors this route answers beyond those any route may (400, 401, 403, 404): status, then when. */
  errors?: Readonly<Record<number, string>>;
}

/** Every code of `{"error": {"code"}}` (http-error.ts), for the document. */
export const API_ERROR_CODES = [
  'bad_request',
  'unauthorized',
  'forbidden',
  'bad_json',
  'too_deep',
  'body_too_large',
  'request_timeout',
  'too_many_connections',
  'too_many_subscribers',
  'not_found',
  'method_not_allowed',
  'unsupported_media_type',
  'conflict',
  'download_failed',
  'media_corrupt',
  'download_timeout',
  'unavailable',
  'insufficient_storage',
  'internal',
] as const satisfies readonly ApiErrorCode[];
/** Fails to compile when http-error.ts gains a code this list lacks. */
type AllErrorCodesListed = Expect<[Exclude<ApiErrorCode, (typeof API_ERROR_CODES)[number]>] extends [never] ? true : false>;

/** The body of every error answer. */
export const ErrorBody = z
  .object({ error: z.object({ code: z.enum(API_ERROR_CODES), message: z.string() }) })
  .meta({ id: 'Error', description: 'Every error answer: a code clients may switch on, and a message naming the problem.' });

/** True when A and B are the same type: `type X = Expect<Same<A, B>>` keeps a schema and a TypeScript type from drifting apart. */
export type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Compiles only for `true`. */
export type Expect<T extends true> = T;

/** An ISO-8601 time. */
export const isoTime = z.string().meta({ format: 'date-time' });
/** A cursor as answers carry it: digits in a string (treat it as opaque). */
export const cursorText = z.string().meta({ pattern: '^[0-9]+$', description: 'a cursor: digits in a string' });

/**
 * The query parameters of a route; any other is refused, so a typo never widens what a request
 * selects. A parameter whose schema is an array is a list (`?account=a,b&account=c`).
 */
export function strictQuery<T extends z.ZodRawShape>(shape: T) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? `unknown query parameter "${String(iss.keys[0])}" (${known.length ? `use ${known.join(', ')}` : 'this route takes none'})` : undefined),
  });
}

/**
 * A JSON object body; an unknown field is refused naming the fields there are (`hidden` ones are
 * taken but not offered), and a body that is no object names `shape` when given.
 */
export function strictBody<T extends z.ZodRawShape>(shape: T, opts: { shape?: string; hidden?: readonly string[] } = {}) {
  const offered = Object.keys(shape).filter((k) => !opts.hidden?.includes(k));
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code === 'unrecognized_keys') return `${String(iss.keys[0])}: unknown field (expected ${offered.join(', ')})`;
      if (iss.code === 'invalid_type') return `request body must be a JSON object${opts.shape ? ` ${opts.shape}` : ''}`;
      return undefined;
    },
  });
}

/** A required string field (null counts as absent). */
export const requiredString = () => z.string({ error: (iss) => (iss.input === undefined || iss.input === null ? 'required' : `expected a string, got ${typeof iss.input}`) });

/** An optional string field; null is taken for absent (and passed on as null). */
export const optionalString = () => z.string({ error: (iss) => `expected a string, got ${typeof iss.input}` }).nullish();

/** A required, non-empty string field. */
export const nonEmptyString = () => z.string({ error: 'required (a string)' }).min(1, { error: 'required (a string)' });

const CURSOR = /^\d{1,15}$/;

/**
 * A cursor in a body, as the API hands them out (a string of digits; a JSON number is taken
 * too). `hint` says where the client should have got it from, for the error.
 */
export function cursorField(hint = '(digits)') {
  const message = (input: unknown) => `expected a cursor ${hint}, got ${JSON.stringify(input)}`;
  return z
    .union([z.string(), z.number()], { error: (iss) => message(iss.input) })
    .refine((v) => CURSOR.test(String(v)), { error: (iss) => message(iss.input) })
    .transform(Number)
    .meta({ anyOf: [{ type: 'string', pattern: '^[0-9]{1,15}$' }, { type: 'integer', minimum: 0, maximum: 999_999_999_999_999 }], description: 'a cursor as the API gave it' });
}

/** A cursor in the query string. */
export function cursorParam(hint: string) {
  return z
    .string()
    .refine((v) => CURSOR.test(v), { error: (iss) => `expected a cursor ${hint}, got ${JSON.stringify(iss.input)}` })
    .transform(Number)
    .meta({ type: 'string', pattern: '^[0-9]{1,15}$', description: 'a cursor as the API gave it' });
}

/**
 * A whole number in the query string, `min` to `max`. `digits` takes digits only (else any
 * text JavaScript reads as that number); `message` words the error for the text given.
 */
export function intParam(o: { min: number; max: number; digits?: boolean; message: (raw: string) => string; description?: string }) {
  const ok = (v: string) => {
    const n = Number(v);
    return (!o.digits || /^\d+$/.test(v)) && Number.isInteger(n) && n >= o.min && n <= o.max;
  };
  return z
    .string()
    .refine(ok, { error: (iss) => o.message(iss.input as string) })
    .transform(Number)
    .meta({ type: 'integer', minimum: o.min, maximum: o.max, ...(o.description ? { description: o.description } : {}) });
}

/** The same with a value when the parameter is left out. */
export function intParamOr(fallback: number, o: Parameters<typeof intParam>[0]) {
  return intParam(o).default(fallback);
}

/** A list parameter: repeated or comma-separated, blanks dropped (`?account=a,b&account=c`). */
export function listParam<T extends z.ZodType<string, string>>(item: T, description: string) {
  return z.array(item).meta({ description: `${description}; repeated or comma-separated` }).optional();
}
