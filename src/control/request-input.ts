// Reading a request's query string and JSON body: the checks every route shares, with one
// wording for each mistake, so a client sees the same message for the same error everywhere.
import type { FollowSink } from '../inbox/follow.js';
import type { InboxRow } from '../inbox/store.js';
import { inboxRowToJson } from '../inbox/store.js';
import { HttpError } from './http-error.js';
import type { NdjsonStream } from './server.js';

/** Refuses any query parameter not in `known`: a typo must never widen what a request selects. */
export function rejectUnknownParams(params: URLSearchParams, known: readonly string[]): void {
  for (const key of params.keys()) {
    if (!known.includes(key)) throw new HttpError(400, 'bad_request', `unknown query parameter "${key}" (use ${known.join(', ')})`);
  }
}

/** A list parameter, repeated or comma-separated (`?account=a,b&account=c`), blanks dropped. */
export function listParam(params: URLSearchParams, key: string): string[] {
  return params
    .getAll(key)
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

/** The body as a JSON object; `shape` (such as `{"consumer","cursor"}`) is named in the error. */
export function objectBody(raw: unknown, shape?: string): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new HttpError(400, 'bad_request', `request body must be a JSON object${shape ? ` ${shape}` : ''}`);
  }
  return raw as Record<string, unknown>;
}

/** Refuses any body field not in `known`. */
export function rejectUnknownFields(body: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(body)) {
    if (!known.includes(key)) throw new HttpError(400, 'bad_request', `${key}: unknown field (expected ${known.join(', ')})`);
  }
}

/** A string field; null counts as absent. */
export function stringField(body: Record<string, unknown>, key: string, required: boolean): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) {
    if (required) throw new HttpError(400, 'bad_request', `${key}: required`);
    return undefined;
  }
  if (typeof v !== 'string') throw new HttpError(400, 'bad_request', `${key}: expected a string, got ${typeof v}`);
  return v;
}

/** A required, non-empty string field. */
export function nonEmptyString(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (typeof v !== 'string' || v === '') throw new HttpError(400, 'bad_request', `${key}: required (a string)`);
  return v;
}

/**
 * A cursor as the API hands them out (a string of digits; a JSON number is taken too). `hint`
 * says where the client should have got it from, for the error.
 */
export function cursorValue(raw: unknown, key: string, hint = '(digits)'): number {
  const text = typeof raw === 'number' ? String(raw) : raw;
  if (typeof text !== 'string' || !/^\d{1,15}$/.test(text)) throw new HttpError(400, 'bad_request', `${key}: expected a cursor ${hint}, got ${JSON.stringify(raw)}`);
  return Number(text);
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
