// A POST /v1/messages body as the content an outbox row sends: one kind per request (a text, a
// media file, a location, a contact card, a reaction, an edit or a delete), a reply's quoted
// message found in the outbox or the inbox of that very chat, and media put in the media store
// before the row exists. Nothing is guessed: a message to react to, edit, delete or quote must be
// one the account has in that chat, so an agent cannot point at an id it made up.
import { createReadStream, realpathSync } from 'node:fs';
import { isAbsolute, relative, sep } from 'node:path';
import type { z } from 'zod';
import type { Inbox } from '../inbox/inbox.js';
import type { MediaKind, MessageRef, OutboundContent, QuotedRef } from '../outbox/content.js';
import type { MediaStore, StoredMedia } from '../outbox/media-store.js';
import { normalisePhone, normaliseRecipient } from '../outbox/recipient.js';
import type { OutboxBackend } from '../outbox/backend.js';
import { ContactInput, LocationInput, MAX_CAPTION, MediaInput, ReactionInput, messageId } from './api-schema/messages.js';
import { HttpError } from './http-error.js';
import { parseInput } from './request-input.js';
import type { Caller } from './roles.js';

/** What composing needs: the stores targets are looked up in, the media store, the caller. */
export interface ComposeDeps {
  outbox: Pick<OutboxBackend, 'findSent'>;
  inbox?: Pick<Inbox, 'store' | 'chatsOf'> | undefined;
  media?: MediaStore | undefined;
  /** The state directory: no file in it is ever sent. */
  stateDir?: string | undefined;
}

/** The content of a body, or undefined for a plain text (the text contract of before). */
export async function composeContent(body: Record<string, unknown>, caller: Caller, deps: ComposeDeps): Promise<OutboundContent | undefined> {
  const kinds = (['media', 'location', 'contact', 'reaction', 'edit', 'delete'] as const).filter((k) => body[k] !== undefined && body[k] !== null);
  if (kinds.length > 1) throw new HttpError(400, 'bad_request', `${kinds.join(', ')}: give one of them per message`);
  const kind = kinds[0];
  const account = body.account as string;
  const to = normaliseRecipient(body.to as string);
  if ('error' in to) throw new HttpError(400, 'bad_request', `to: ${to.error}`);
  const text = body.text as string | undefined;
  if (body.replyTo !== undefined && (kind === 'reaction' || kind === 'edit' || kind === 'delete')) {
    throw new HttpError(400, 'bad_request', `replyTo: a ${kind} does not quote a message`);
  }
  const replyTo = body.replyTo === undefined || body.replyTo === null ? undefined : await quoted(parse(messageId, body.replyTo, 'replyTo'), account, to.jid, caller, deps);
  const reply = replyTo ? { replyTo } : {};
  switch (kind) {
    case undefined:
      return replyTo ? { type: 'text', text: text ?? '', ...reply } : undefined;
    case 'media': {
      const m = parse(MediaInput, body.media, 'media');
      if (text !== undefined && m.caption !== undefined) throw new HttpError(400, 'bad_request', 'text: the caption is given twice (text and media.caption)');
      const caption = m.caption ?? text;
      if (caption !== undefined && caption.length > MAX_CAPTION) throw new HttpError(400, 'bad_request', `${m.caption !== undefined ? 'media.caption' : 'text'}: a caption is at most ${MAX_CAPTION} characters (${caption.length})`);
      const store = deps.media;
      if (!store) throw new HttpError(503, 'unavailable', 'media: the daemon has no media store');
      const stored = await storeMedia(m, caller, store, deps.stateDir);
      const mediaKind: MediaKind = m.kind ?? kindFor(stored.detected ?? m.mimetype ?? '');
      if (m.voice && mediaKind !== 'audio') throw new HttpError(400, 'bad_request', 'media.voice: only audio can be a voice note');
      if (caption !== undefined && (mediaKind === 'audio' || mediaKind === 'sticker')) throw new HttpError(400, 'bad_request', `text: a ${mediaKind} carries no caption`);
      const file = store.describe(stored, mediaKind, { mimetype: m.mimetype, fileName: m.fileName, voice: m.voice });
      return { type: mediaKind, media: file, ...(caption ? { caption } : {}), ...(m.voice ? { voice: true } : {}), ...reply };
    }
    case 'location': {
      noText(text, 'location');
      const l = parse(LocationInput, body.location, 'location');
      return { type: 'location', ...l, ...reply };
    }
    case 'contact': {
      noText(text, 'contact');
      const c = parse(ContactInput, body.contact, 'contact');
      return { type: 'contact', displayName: c.name, vcard: c.vcard ?? vcardFor(c.name, c.phone!), ...reply };
    }
    case 'reaction': {
      noText(text, 'reaction');
      const r = parse(ReactionInput, body.reaction, 'reaction');
      return { type: 'reaction', target: await target(r.messageId, account, to.jid, caller, deps, 'reaction.messageId', 'any'), emoji: r.emoji };
    }
    case 'edit': {
      const id = parse(messageId, body.edit, 'edit');
      if (typeof text !== 'string' || text.trim() === '') throw new HttpError(400, 'bad_request', 'text: the new text of the edited message is required');
      return { type: 'edit', target: await target(id, account, to.jid, caller, deps, 'edit', 'own-text'), text };
    }
    case 'delete': {
      noText(text, 'delete');
      return { type: 'delete', target: await target(parse(messageId, body.delete, 'delete'), account, to.jid, caller, deps, 'delete', 'own') };
    }
  }
}

/**
 * A content field parsed by its schema. POST /v1/messages has checked it already (SendBody); it is
 * checked here too so that no caller of composeContent can hand in an unchecked one.
 */
function parse<T>(schema: z.ZodType<T>, raw: unknown, field: string): T {
  return parseInput(schema, raw, { prefix: field });
}

function noText(text: string | undefined, kind: string): void {
  if (text !== undefined) throw new HttpError(400, 'bad_request', `text: a ${kind} carries no text`);
}

/** The media kind a file of this type is sent as when the request names none. */
function kindFor(mimetype: string): MediaKind {
  const t = mimetype.toLowerCase();
  if (t === 'image/webp') return 'sticker';
  if (t === 'image/jpeg' || t === 'image/png') return 'image';
  if (t.startsWith('video/')) return 'video';
  if (t.startsWith('audio/')) return 'audio';
  return 'document';
}

async function storeMedia(m: z.output<typeof MediaInput>, caller: Caller, store: MediaStore, stateDir: string | undefined): Promise<StoredMedia> {
  if (m.sha256 !== undefined) {
    const found = await store.find(m.sha256);
    if (!found) throw new HttpError(400, 'bad_request', `media.sha256: no file ${m.sha256} in the media store (upload it with POST /v1/media first; unsent uploads are kept for an hour)`);
    return found;
  }
  if (m.base64 !== undefined) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(m.base64) || m.base64.length % 4 !== 0) throw new HttpError(400, 'bad_request', 'media.base64: not base64 (standard alphabet, padded)');
    return store.put([Buffer.from(m.base64, 'base64')]);
  }
  // A file on the daemon's host is read with the daemon's rights: only an operator may name one.
  if (caller.role === 'client') {
    throw new HttpError(403, 'forbidden', 'media.path: a client cannot name a file on the daemon\'s host; send the bytes (POST /v1/media, or media.base64)');
  }
  const path = m.path!;
  if (!isAbsolute(path)) throw new HttpError(400, 'bad_request', `media.path: expected an absolute path, got ${JSON.stringify(path)}`);
  try {
    // Links resolved first: a link elsewhere must not lead into the state directory.
    const real = realpathSync(path);
    if (stateDir) {
      const rel = relative(realpathSync(stateDir), real);
      const outside = rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel);
      if (!outside) throw new HttpError(400, 'bad_request', 'media.path: files in the state directory are never sent');
    }
    return await store.put(createReadStream(real));
  } catch (err) {
    if (err instanceof HttpError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new HttpError(400, 'bad_request', `media.path: cannot read ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'it is a directory' : e.message}`);
  }
}

/** A one-contact vCard for a name and a number. */
function vcardFor(name: string, phone: string): string {
  const digits = normalisePhone(phone);
  if (!digits) throw new HttpError(400, 'bad_request', `contact.phone: expected a phone number (7-15 digits), got ${JSON.stringify(phone)}`);
  const safe = name.replace(/[\r\n;]/g, ' ');
  return ['BEGIN:VCARD', 'VERSION:3.0', `FN:${safe}`, `TEL;type=CELL;waid=${digits}:+${digits}`, 'END:VCARD'].join('\n');
}

/** A message the account has in this chat, and whether the chat has it (an unsent row is no target). */
interface Found extends QuotedRef {
  kind: string;
  onWire: boolean;
  /** For one of ours: which caller enqueued it. */
  enqueuedBy?: { role: 'operator' | 'client' | null; client: string | null };
}

/**
 * A message the account has in this chat (under either of the person's identities): sent by it
 * (the outbox) or received (the inbox). A client finds only what it may read: not messages
 * `allowFrom` refused.
 */
async function find(id: string, account: string, chat: string, caller: Caller, deps: ComposeDeps): Promise<Found | null> {
  const chats = deps.inbox?.chatsOf(account, chat) ?? [chat];
  const ours = await deps.outbox.findSent(account, chats, id);
  if (ours) {
    return {
      id,
      fromMe: true,
      text: ours.text || null,
      kind: ours.kind,
      onWire: ours.wireSends > 0 || ['sent', 'delivered', 'read'].includes(ours.state),
      enqueuedBy: { role: ours.clientRole ?? null, client: ours.client },
    };
  }
  if (!deps.inbox) return null;
  const statuses = caller.role === 'client' ? (['ok'] as const) : (['ok', 'ignored'] as const);
  const theirs = (await deps.inbox.store.byMessageId(id, { accounts: [account], chats, statuses }))[0];
  if (!theirs) return null;
  return { id, fromMe: false, ...(theirs.chatType === 'group' ? { participant: theirs.from } : {}), text: theirs.text, kind: theirs.kind, onWire: true };
}

/** The message, refused when the chat does not have it: unknown, or one of ours not sent (held, denied, queued...). */
async function existing(id: string, account: string, chat: string, caller: Caller, deps: ComposeDeps, field: string): Promise<Found> {
  const m = await find(id, account, chat, caller, deps);
  if (!m) throw new HttpError(400, 'bad_request', `${field}: account ${account} has no message ${id} in chat ${chat}`);
  if (!m.onWire) throw new HttpError(409, 'conflict', `${field}: message ${id} has not been sent (it is not in the chat); only a sent message can be pointed at`);
  return m;
}

async function quoted(id: string, account: string, chat: string, caller: Caller, deps: ComposeDeps): Promise<QuotedRef> {
  const m = await existing(id, account, chat, caller, deps, 'replyTo');
  return { id: m.id, fromMe: m.fromMe, ...(m.participant ? { participant: m.participant } : {}), text: m.text };
}

async function target(id: string, account: string, chat: string, caller: Caller, deps: ComposeDeps, field: string, need: 'any' | 'own' | 'own-text'): Promise<MessageRef> {
  const m = await existing(id, account, chat, caller, deps, field);
  if (need !== 'any') {
    const verb = need === 'own' ? 'deleted' : 'edited';
    if (!m.fromMe) throw new HttpError(400, 'bad_request', `${field}: message ${id} was not sent by account ${account}; only its own messages can be ${verb}`);
    // A client changes only what it sent itself, as it cancels only what it enqueued.
    if (caller.role === 'client' && (m.enqueuedBy?.role !== 'client' || m.enqueuedBy.client !== caller.name)) {
      throw new HttpError(403, 'forbidden', `${field}: message ${id} was not sent by client "${caller.name}"; changing another's message needs the operator role`);
    }
    if (need === 'own-text' && m.kind !== 'message') throw new HttpError(400, 'bad_request', `${field}: message ${id} is a ${m.kind}; only text messages can be edited`);
  }
  return { id: m.id, fromMe: m.fromMe, ...(m.participant ? { participant: m.participant } : {}) };
}
