// The narrow interface between the daemon and WhatsApp. Only src/wa/ knows Baileys; everything
// else sees these types, so no Baileys type leaks out and runners are testable with a fake.
import type { CloseInfo } from '../accounts/close-policy.js';
import type { OutboundContent } from '../outbox/content.js';

export type { CloseInfo };

/** The kinds of chat a message can arrive in. */
export type InboundChatType = 'direct' | 'group' | 'status' | 'broadcast' | 'newsletter';

/**
 * What an inbound message is. Content is kept for text (and captions, reactions, edits, poll
 * names); for the other kinds the metadata (`detail`) is kept so later work can fill in the rest.
 * `undecryptable`: it arrived but could not be decrypted (what users see as "waiting for this
 * message"); a later successful delivery of the same id replaces it.
 */
export type InboundKind =
  | 'text'
  | 'image'
  | 'video'
  | 'audio'
  | 'document'
  | 'sticker'
  | 'location'
  | 'contact'
  | 'reaction'
  | 'edit'
  | 'revoke'
  | 'poll'
  | 'poll_vote'
  | 'other'
  | 'undecryptable';

/** A message received from a peer. */
export interface InboundMessage {
  /** WhatsApp message id. */
  id: string;
  /** The chat it arrived in (a user JID for direct chats, a group JID for groups). */
  chat: string;
  /** The sender's JID (differs from `chat` in groups). */
  from: string;
  /**
   * What the chat is. `status` (status@broadcast: a contact's status update, `from` is its
   * poster), `broadcast` (a broadcast list) and `newsletter` (a channel) are chats the outbox
   * refuses to send to, so a reply to one can never pass as a `direct` message.
   */
  chatType: InboundChatType;
  /** What it is (see InboundKind). */
  kind: InboundKind;
  /** The text, caption, reaction emoji, edited text or poll name; null when it has none. */
  text: string | null;
  /** Metadata of non-text kinds (mimetype, target message id, poll options, decrypt error, ...). */
  detail?: Record<string, unknown>;
  /**
   * What downloading the file of a media message needs (keys included). Stored apart from
   * `detail` and never shown to readers or consumers.
   */
  media?: InboundMediaRef;
  /** Delivered from the server's offline queue (catch-up after a reconnect) rather than live. */
  offline?: boolean;
  /** Seconds since the epoch, as WhatsApp stamped it. */
  timestamp: number;
}

/** The media kinds whose file can be downloaded. */
export type InboundMediaType = 'image' | 'video' | 'audio' | 'document' | 'sticker';

/**
 * Where a received media file is and how to decrypt and check it, as the message carried it.
 * Secret: `mediaKey` decrypts the file and `url` fetches it; only the download path sees them.
 */
export interface InboundMediaRef {
  mediaType: InboundMediaType;
  /** Base64 of the 32-byte media key. */
  mediaKey: string;
  directPath: string | null;
  url: string | null;
  /** Base64 SHA-256 of the encrypted file, as the message states it. */
  fileEncSha256: string | null;
  /** Base64 SHA-256 of the plaintext, as the message states it (checked after decryption). */
  fileSha256: string | null;
  fileLength: number | null;
  mimetype: string | null;
}

/** Delivery progress of one of our messages, by its WhatsApp message id. */
export type AckStatus = 'server' | 'delivered' | 'read' | 'played' | 'error';

/** What happened to members of a group, as Baileys names it (`modify`: a member changed number). */
export type GroupParticipantsAction = 'add' | 'remove' | 'promote' | 'demote' | 'modify';

/**
 * Settings of a group that changed, only those that did. `description` is null when it was
 * cleared, `ephemeral` is the disappearing-messages timer in seconds (0: off; Baileys 7 reports a
 * group's timer change as a chat update instead, so it shows only where Baileys puts it in
 * `groups.update`). The invite code is never reported: it lets anyone join.
 */
export interface GroupChanges {
  subject?: string;
  description?: string | null;
  /** Only admins may send messages. */
  announce?: boolean;
  /** Only admins may change the group's settings. */
  restrict?: boolean;
  ephemeral?: number;
  /** Every member (not only admins) may add members. */
  memberAddMode?: boolean;
  /** Joining needs an admin's approval. */
  joinApprovalMode?: boolean;
}

/** Everything a connection reports, as a discriminated union. */
export type WaEvent =
  | { type: 'qr'; qr: string }
  | { type: 'open'; jid: string; name: string | null }
  | { type: 'close'; close: CloseInfo }
  | { type: 'creds_saved' }
  /**
   * A message from a peer, emitted after it was decrypted and before WhatsApp is sent its
   * delivery receipt. Listeners run synchronously, and a listener that stores it must commit
   * before returning, or hand its commit to `waitFor`: the receipt waits for that, and a listener
   * that throws (or a commit that rejects) stops the receipt (Baileys then asks for the message
   * again). `waitFor` is absent where nothing waits (a message reported after its receipt).
   */
  | { type: 'inbound'; message: InboundMessage; waitFor?: (commit: Promise<unknown>) => void }
  | { type: 'ack'; messageId: string; chat: string; status: AckStatus; error?: string }
  /** Our own message seen coming back from the server (another device, or our own send echoed). */
  | { type: 'echo'; messageId: string; chat: string }
  /**
   * A recipient could not decrypt one of our messages and asked for it again (a retry receipt);
   * Baileys re-sends it, re-encrypted, with the content the outbox kept for it.
   */
  | { type: 'retry_requested'; messageId: string; from: string; count: number }
  /**
   * Members of a group this account is in were added, removed, promoted or demoted (a `w:gp2`
   * notification). `participants` are their JIDs as the group addresses them (LID or phone
   * number); `author` is who did it, when the server said.
   */
  | { type: 'group_participants'; group: string; action: GroupParticipantsAction; participants: string[]; author?: string }
  /** Settings of a group this account is in changed (subject, description, announce, ...): only what changed. */
  | { type: 'group_updated'; group: string; changes: GroupChanges; author?: string }
  /** Any application stanza received (liveness). */
  | { type: 'stanza_in' }
  /** A frame written to the server: a stanza of any kind (probe, message, receipt, Baileys' own iqs), for status. */
  | { type: 'stanza_out' };

/**
 * The only part of a connection that can put something in front of another person. The send gate
 * is given a connection as this type and nothing more; nothing else in the daemon calls it.
 * Its methods are stanzas that reach a person: a message, read receipts (blue ticks), and a
 * request to their phone to upload a media file again.
 */
export interface WaSender {
  /**
   * Sends a message (text, media, location, contact, reply, reaction, edit, delete) with a
   * message id chosen by the caller (the outbox assigns it at enqueue). Media is read from the
   * file `hooks.mediaPath` names and uploaded anew on every call. Rejects with a
   * SendNotWrittenError (send-error.ts) when the stanza certainly was not written.
   */
  send(jid: string, content: OutboundContent, messageId: string, hooks: SendHooks): Promise<void>;
  /**
   * Marks received messages of a chat as read (blue ticks the sender sees). `participant` is the
   * sender in a group. Rejects with a SendNotWrittenError when nothing was written.
   */
  sendReadReceipt(chat: string, messages: ReadonlyArray<{ id: string; participant?: string | undefined }>): Promise<void>;
  /**
   * Asks the sender's phone to upload the file of a received media message again (its download
   * expired) and resolves with where it now is. The person sees nothing, but the request reaches
   * their phone, so it passes the gate like a receipt.
   */
  requestMediaReupload(chat: string, message: { id: string; participant?: string | undefined }, media: InboundMediaRef): Promise<{ directPath: string; url: string }>;
}

/**
 * One live WhatsApp connection (one Baileys socket), as the account runner drives it. It reports
 * exactly one `close`. Apart from the WaSender part, every method reaches only the server.
 */
export interface WaConnection extends WaSender {
  /** Subscribes to the connection's events. */
  onEvent(listener: (event: WaEvent) => void): void;
  /** Sends the keepalive IQ (`w:p` ping); rejects when it is not answered within deadlineMs. */
  ping(deadlineMs: number): Promise<void>;
  /** Asks for an 8-character pairing code for the phone number (instead of a QR). */
  requestPairingCode(phone: string): Promise<string>;
  /**
   * The other identity of a person: the LID JID of a phone-number JID (the learnt mapping, else a
   * usync query to the server), or the phone-number JID of a LID JID (the learnt mapping only: the
   * server does not disclose it). Null when not known; callers bound the wait.
   */
  resolveIdentity(jid: string): Promise<string | null>;
  /** Ends the connection now (no close handshake), reporting `close` with the given info. */
  terminate(close: CloseInfo): void;
  /** Logs the device out on the server, then closes. */
  logout(): Promise<void>;
}

/** Options for one connection attempt. */
export interface ConnectOptions {
  account: string;
  /** Where to connect instead of WhatsApp, e.g. the emulator. */
  wsUrl?: string | undefined;
  /** Longest time for the ws handshake and for Baileys' own queries. */
  connectTimeoutMs: number;
}

/** What a send needs from the outbox besides the content. */
export interface SendHooks {
  /** The path of a media file in the store, by its sha256. */
  mediaPath(sha256: string): string;
  /** Called with the message as built (media uploaded), before its stanza is written: a retry receipt re-sends exactly this. */
  prepared(wire: Uint8Array): void | Promise<void>;
}

/** What the outbox kept of a message we sent, for re-sending it when a recipient asks (retry receipt). */
export interface SentContent {
  text: string;
  content?: OutboundContent;
  /** The message as built for its last wire send (encoded WhatsApp message), when kept. */
  wire: Uint8Array | null;
}

/** Opens connections. The daemon has one; tests pass a fake. */
export interface WaConnector {
  connect(opts: ConnectOptions): WaConnection;
  /** True when the account has completed pairing (has an identity). */
  isRegistered(account: string): boolean;
  /** When the account's current creds were first saved (epoch ms), or null. */
  authCreatedAt(account: string): number | null;
  /** The phone-number JID behind a LID JID, when this account (any, without one) has learned it; else null. */
  phoneJidForLid(account: string | undefined, lidJid: string): string | null;
  /** The LID JID WhatsApp uses for a phone-number JID, when an account (any, without one) has learned it; else null. */
  lidJidForPhone(account: string | undefined, phoneJid: string): string | null;
  /** Archives the account's creds (logout, 401) so the next connect pairs afresh. */
  archiveCreds(account: string, reason: string): boolean;
  /**
   * Downloads and decrypts a received media file (no open connection needed). Yields the
   * plaintext as the server sent it, unchecked: the caller verifies `fileSha256`. `signal`
   * aborts the download.
   */
  downloadMedia(ref: InboundMediaRef, opts?: { signal?: AbortSignal }): Promise<AsyncIterable<Uint8Array>>;
}
