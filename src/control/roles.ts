// Who is calling the control API: an operator (anyone who can open the operator socket) or a
// client (a bot, an agent) recognised by its token on the client socket. The route table says
// what a client may do; everything else needs the operator role. See docs/roles.md.
import { createHash, timingSafeEqual } from 'node:crypto';
import { HttpError } from './http-error.js';

/** What a client may be allowed: sending (messages, read receipts), reading (inbox, message states, its audit), events. */
export const CLIENT_PERMISSIONS = ['send', 'read', 'events'] as const;
export type ClientPermission = (typeof CLIENT_PERMISSIONS)[number];

/** A client as the config lists it. */
export interface ClientSpec {
  name: string;
  /** Hex SHA-256 of the client's token: the config never holds the token itself. */
  tokenSha256: string;
  accounts: readonly string[];
  may?: readonly ClientPermission[] | undefined;
}

export type Caller =
  | { role: 'operator' }
  | { role: 'client'; name: string; tokenSha256: string; accounts: ReadonlySet<string>; may: ReadonlySet<ClientPermission> };

export const OPERATOR: Caller = { role: 'operator' };

/** Hex SHA-256 of a token, as `clients[].tokenSha256` holds it. */
export function tokenSha256(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string | undefined): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m ? m[1]! : null;
}

/**
 * The client a token belongs to, or null. Compares hashes in constant time, and every entry is
 * compared, so the time taken says nothing about which (if any) matched.
 */
export function clientForToken(token: string, clients: readonly ClientSpec[]): Caller | null {
  const digest = Buffer.from(tokenSha256(token), 'hex');
  let found: ClientSpec | null = null;
  for (const c of clients) {
    const want = Buffer.from(c.tokenSha256, 'hex');
    if (want.length === digest.length && timingSafeEqual(want, digest) && !found) found = c;
  }
  if (!found) return null;
  return { role: 'client', name: found.name, tokenSha256: found.tokenSha256, accounts: new Set(found.accounts), may: new Set(found.may ?? CLIENT_PERMISSIONS) };
}

/**
 * The caller on the client socket: a valid token is required. On the operator socket a client's
 * token makes the request that client's (an operator trying what an agent can do); no token is
 * the operator.
 */
export function authenticate(authorization: string | undefined, clients: readonly ClientSpec[], socket: 'operator' | 'client'): Caller {
  const token = bearerToken(authorization);
  if (token === null && authorization !== undefined && authorization.trim() !== '') {
    // A token was meant but cannot be read: never fall back to the operator for it.
    throw new HttpError(401, 'unauthorized', 'the Authorization header is not "Bearer <token>"', { 'www-authenticate': 'Bearer' });
  }
  if (token === null) {
    if (socket === 'operator') return OPERATOR;
    throw new HttpError(401, 'unauthorized', 'this is the client socket: send "Authorization: Bearer <token>" with a token listed (as its SHA-256) in the config\'s clients (the CLI reads WA_SUPERVISOR_TOKEN)', {
      'www-authenticate': 'Bearer',
    });
  }
  const caller = clientForToken(token, clients);
  if (!caller) throw new HttpError(401, 'unauthorized', 'unknown token: no entry of the config\'s clients has its SHA-256', { 'www-authenticate': 'Bearer' });
  return caller;
}

/** True when a client's entry still grants what `caller` was given (same token, accounts, permissions). */
export function sameGrant(caller: Extract<Caller, { role: 'client' }>, spec: ClientSpec): boolean {
  const may = new Set(spec.may ?? CLIENT_PERMISSIONS);
  const accounts = new Set(spec.accounts);
  return (
    spec.tokenSha256 === caller.tokenSha256 &&
    may.size === caller.may.size &&
    [...may].every((p) => caller.may.has(p)) &&
    accounts.size === caller.accounts.size &&
    [...accounts].every((a) => caller.accounts.has(a))
  );
}

/** Refuses a client on a route only an operator may use. */
export function operatorOnly(caller: Caller, what: string): void {
  if (caller.role === 'client') {
    throw new HttpError(403, 'forbidden', `${what} needs the operator role; client "${caller.name}" may ${describeMay(caller)} for its accounts (${[...caller.accounts].join(', ')})`);
  }
}

/** Refuses a client without a permission a route needs. */
export function requirePermission(caller: Caller, permission: ClientPermission, what: string): void {
  if (caller.role === 'client' && !caller.may.has(permission)) {
    throw new HttpError(403, 'forbidden', `${what} needs the "${permission}" permission (or the operator role); client "${caller.name}" may ${describeMay(caller)}`);
  }
}

/** Refuses a client an account that is not one of its own. */
export function requireAccount(caller: Caller, account: string): void {
  if (caller.role === 'client' && !caller.accounts.has(account)) {
    throw new HttpError(403, 'forbidden', `client "${caller.name}" may not use account "${account}" (its accounts: ${[...caller.accounts].join(', ')}); other accounts need the operator role`);
  }
}

/**
 * The accounts a read may cover: what was asked, checked against a client's own (all of them
 * when it asked for none). Undefined for an operator who asked for none (every account).
 */
export function scopedAccounts(caller: Caller, asked: readonly string[]): string[] | undefined {
  if (caller.role === 'operator') return asked.length ? [...asked] : undefined;
  for (const a of asked) requireAccount(caller, a);
  return asked.length ? [...asked] : [...caller.accounts];
}

/**
 * Why a client may not read a stream consumer covering `accounts` (absent: every account), or
 * null when it may: every account the consumer covers must be the client's own.
 */
export function consumerReadRefusal(caller: Extract<Caller, { role: 'client' }>, name: string, accounts: readonly string[] | null | undefined): string | null {
  if (!accounts?.length) return `consumer "${name}" covers every account; reading it needs the operator role (give the consumer "accounts" within client "${caller.name}"'s)`;
  if (accounts.some((a) => !caller.accounts.has(a))) return `consumer "${name}" covers accounts that are not client "${caller.name}"'s; reading it needs the operator role`;
  return null;
}

/** Event types a client never receives: alerts and digests are the operators', and so is who allowFrom refused. */
export function clientMaySee(caller: Caller, event: { type: string; account?: string | undefined }): boolean {
  if (caller.role === 'operator') return true;
  if (event.account === undefined || !caller.accounts.has(event.account)) return false;
  // Message events carry texts, recipients and states, group events who is in a chat and its
  // subject: what "read" grants, not "events" alone.
  if ((event.type.startsWith('message.') || event.type.startsWith('group.')) && !caller.may.has('read')) return false;
  return !(event.type === 'alert' || event.type.startsWith('alert.') || event.type === 'digest' || event.type === 'message.ignored');
}

function describeMay(caller: Extract<Caller, { role: 'client' }>): string {
  const words: Record<ClientPermission, string> = { send: 'send', read: 'read its inbox and message states', events: 'follow events' };
  const list = CLIENT_PERMISSIONS.filter((p) => caller.may.has(p)).map((p) => words[p]);
  return list.length ? list.join(', ') : 'nothing';
}
