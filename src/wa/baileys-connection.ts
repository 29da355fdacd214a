// The one production module that drives Baileys. It turns a Baileys socket into a WaConnection:
// typed events, exactly one close per connection, a refused HTTP upgrade reported at once (Baileys
// alone would wait for ever), and a terminate that does not wait for the ws library's 30 s close.
import makeWASocket, { Browsers, DEFAULT_CONNECTION_CONFIG, DisconnectReason, downloadContentFromMessage, generateWAMessage, isLidUser, isPnUser, jidNormalizedUser, proto, type BinaryNode, type CacheStore, type GroupMetadata, type WAMessage, type WASocket, type ConnectionState, type AuthenticationState } from '@whiskeysockets/baileys';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { CLOSE_CODE_NAMES, type CloseInfo } from '../accounts/close-policy.js';
import type { StateDb } from '../store/db.js';
import { SqliteAuthStore } from './auth-store.js';
import { InboundCapture } from './inbound-capture.js';
import { toInbound, ackStatusOf } from './message-mapping.js';
import { baileysSharesContextStore, contextFramesByDefault } from './context-store.js';
import { GroupMetadataCache } from './group-metadata-cache.js';
import { groupParticipantsEvent, groupUpdatedEvent } from './group-events.js';
import { SendNotWrittenError, classifySendError, groupMetadataFailed } from './send-error.js';
import { retryCounterCache } from './retry-counters.js';
import { toBaileys } from './outbound-message.js';
import type { OutboundContent } from '../outbox/content.js';
import type { ConnectOptions, InboundMediaRef, SendHooks, SentContent, WaConnection, WaConnector, WaEvent } from './types.js';

/** WhatsApp's server JID, the target of keepalive IQs. */
const SERVER_JID = 's.whatsapp.net';
/** A kept group's metadata is asked for again after this long, in case a change went unseen. */
const GROUP_METADATA_TTL_MS = 10 * 60_000;
/** How long the sender's phone may take to upload a media file again. */
const MEDIA_REUPLOAD_TIMEOUT_MS = 30_000;
/** Groups kept per connection. */
const GROUP_METADATA_MAX = 500;

/** Opens Baileys connections whose auth state lives in the state database. */
export class BaileysConnector implements WaConnector {
  readonly #db: StateDb;
  readonly #log: Logger;
  readonly #version: [number, number, number] | undefined;
  readonly #sentContent: (account: string, messageId: string) => SentContent | null;

  constructor(opts: {
    db: StateDb;
    log: Logger;
    version?: [number, number, number];
    /** The content of a message this account sent, by its WhatsApp id (the outbox's copy). */
    sentContent?: (account: string, messageId: string) => SentContent | null;
  }) {
    this.#db = opts.db;
    this.#sentContent = opts.sentContent ?? (() => null);
    this.#log = opts.log;
    this.#version = opts.version;
    if (!baileysSharesContextStore() && !contextFramesByDefault()) {
      this.#log.warn(
        { node: process.version },
        'Baileys is installed without the project patch (run npm ci, or npx patch-package): on this Node line the daemon slows down with every reconnect',
      );
    }
  }

  connect(opts: ConnectOptions): WaConnection {
    return new BaileysConnection(new SqliteAuthStore(this.#db, opts.account), opts, this.#log.child({ account: opts.account }), this.#version, {
      retryCounters: retryCounterCache(this.#db, opts.account),
      sentContent: (id) => this.#sentContent(opts.account, id),
    });
  }

  isRegistered(account: string): boolean {
    return new SqliteAuthStore(this.#db, account).isRegistered();
  }

  authCreatedAt(account: string): number | null {
    return new SqliteAuthStore(this.#db, account).createdAt();
  }

  phoneJidForLid(account: string | undefined, lidJid: string): string | null {
    const phone = SqliteAuthStore.mappedUser(this.#db, account, { lid: lidJid.split('@')[0]! });
    return phone ? `${phone}@s.whatsapp.net` : null;
  }

  lidJidForPhone(account: string | undefined, phoneJid: string): string | null {
    const lid = SqliteAuthStore.mappedUser(this.#db, account, { phone: phoneJid.split('@')[0]! });
    return lid ? `${lid}@lid` : null;
  }

  archiveCreds(account: string, reason: string): boolean {
    return new SqliteAuthStore(this.#db, account).archive(reason);
  }

  downloadMedia(ref: InboundMediaRef, opts: { signal?: AbortSignal } = {}): Promise<AsyncIterable<Uint8Array>> {
    return downloadMedia(ref, opts);
  }
}

/** What a connection needs of an account's auth state: SQLite's store or PostgreSQL's (src/store/pg-auth-store.ts). */
export interface ConnectionAuth {
  state(): AuthenticationState;
  /** Saves the creds; a store that answers later returns a promise (writes keep their order). */
  saveCreds(): void | Promise<void>;
}

/** What a connection needs of the outbox. */
export interface ConnectionOutbox {
  retryCounters: CacheStore;
  sentContent: (messageId: string) => SentContent | null | Promise<SentContent | null>;
}

/** Downloads and decrypts a received media file (no socket needed); see WaConnector.downloadMedia. */
export async function downloadMedia(ref: InboundMediaRef, opts: { signal?: AbortSignal } = {}): Promise<AsyncIterable<Uint8Array>> {
  // Needs no socket: the message's own URL (or direct path on its host) and its key. Baileys
  // checks neither hash nor MAC of what it fetched; the caller checks fileSha256. Its fetch
  // takes no abort signal, so an abort ends the decrypted stream, not the request itself.
  const { signal } = opts;
  signal?.throwIfAborted();
  const started = downloadContentFromMessage({ mediaKey: Buffer.from(ref.mediaKey, 'base64'), directPath: ref.directPath, url: ref.url }, ref.mediaType);
  if (!signal) return started;
  const stream = await new Promise<Awaited<typeof started>>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    started.then(
      (s) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) s.destroy(signal.reason as Error);
        resolve(s);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
  signal.addEventListener('abort', () => stream.destroy(signal.reason as Error), { once: true });
  return stream;
}

export class BaileysConnection implements WaConnection {
  readonly #sock: WASocket;
  readonly #store: ConnectionAuth;
  readonly #listeners: Array<(e: WaEvent) => void> = [];
  readonly #log: Logger;
  readonly #capture: InboundCapture;
  readonly #groups = new GroupMetadataCache<GroupMetadata>({ ttlMs: GROUP_METADATA_TTL_MS, maxEntries: GROUP_METADATA_MAX });
  #closed = false;

  constructor(
    store: ConnectionAuth,
    opts: ConnectOptions,
    log: Logger,
    version: [number, number, number] | undefined,
    outbox: ConnectionOutbox,
  ) {
    this.#store = store;
    this.#log = log;
    const auth = store.state();
    // Inbound messages are emitted between decryption and the delivery receipt (inbound-capture.ts).
    // Emitted even after a close was reported: a message decrypted then is still kept.
    const capture = new InboundCapture({
      emit: (message) => {
        const commits: Promise<unknown>[] = [];
        try {
          this.#emit({ type: 'inbound', message, waitFor: (commit) => commits.push(commit) });
        } catch (err) {
          // A listener threw after another handed over its commit: that commit is not waited for.
          for (const c of commits) c.catch(() => undefined);
          throw err;
        }
        return commits.length ? Promise.all(commits).then(() => undefined) : undefined;
      },
      me: () => auth.creds.me ?? undefined,
      askAgain: (node) => this.#askSenderAgain(node),
    });
    this.#capture = capture;
    this.#sock = makeWASocket({
      auth,
      makeSignalRepository: (signalAuth, signalLog, pnToLid) => capture.wrap(DEFAULT_CONNECTION_CONFIG.makeSignalRepository(signalAuth, signalLog, pnToLid), signalAuth.keys),
      logger: log.child({ lib: 'baileys' }, { level: log.level === 'trace' ? 'trace' : 'warn' }),
      browser: Browsers.macOS('Chrome'),
      ...(opts.wsUrl ? { waWebSocketUrl: opts.wsUrl } : {}),
      ...(version ? { version } : {}),
      connectTimeoutMs: opts.connectTimeoutMs,
      defaultQueryTimeoutMs: opts.connectTimeoutMs,
      // Baileys' own keepalive stays on as a backstop; the runner's probe is the one that acts fast.
      keepAliveIntervalMs: 30_000,
      // "available" would silence notifications on the owner's phone.
      markOnlineOnConnect: false,
      syncFullHistory: false,
      // The daemon keeps no chat history. Declining RECENT history also stops Baileys from holding
      // every event (receipts included) for up to 20 s after the first login while it waits for
      // history; the other sync types (LID mappings, push names) are still processed.
      shouldSyncHistoryMessage: ({ syncType }) =>
        syncType !== proto.HistorySync.HistorySyncType.FULL && syncType !== proto.HistorySync.HistorySyncType.RECENT,
      generateHighQualityLinkPreview: false,
      // A retry receipt re-sends the message with the content the outbox kept (Baileys' own cache
      // of recent messages is in memory and gone after a restart); the counters survive restarts.
      getMessage: async (key) => {
        const sent = key.id ? await outbox.sentContent(key.id) : null;
        if (!sent) return undefined;
        // The message as it was built for its last send; a text from before that was kept is
        // rebuilt as Baileys built it.
        if (sent.wire) return proto.Message.decode(sent.wire);
        return !sent.content || (sent.content.type === 'text' && !sent.content.replyTo) ? proto.Message.fromObject({ extendedTextMessage: { text: sent.text } }) : undefined;
      },
      msgRetryCounterCache: outbox.retryCounters,
      // A group send asks the server for the members only when this connection has not kept them.
      cachedGroupMetadata: (jid) => this.#groups.get(jid, () => this.#fetchGroupMetadata(jid)),
    });
    this.#wire();
  }

  onEvent(listener: (event: WaEvent) => void): void {
    this.#listeners.push(listener);
  }

  async send(jid: string, content: OutboundContent, messageId: string, hooks: SendHooks): Promise<void> {
    // The outbox counts a send only once bytes may have left: say when they certainly did not.
    if (this.#closed || !this.#sock.ws.isOpen) throw new SendNotWrittenError('not sent: the connection is not open');
    const me = this.#sock.user?.id;
    if (!me) throw new SendNotWrittenError('not sent: the account is not logged in');
    const out = toBaileys(jid, content, hooks.mediaPath);
    let message;
    try {
      // Built (media encrypted and uploaded to the media server) before anything reaches the
      // chat: a failure here wrote no message.
      message = await generateWAMessage(jid, out.content, {
        logger: this.#log,
        userJid: me,
        upload: this.#sock.waUploadToServer,
        messageId,
        ...(out.quoted ? { quoted: out.quoted } : {}),
      });
    } catch (err) {
      throw new SendNotWrittenError(`not sent: building the message failed: ${(err as Error).message}`, { cause: err });
    }
    await hooks.prepared(proto.Message.encode(message.message!).finish());
    if (this.#closed || !this.#sock.ws.isOpen) throw new SendNotWrittenError('not sent: the connection closed while the message was built');
    try {
      await this.#sock.relayMessage(jid, message.message!, { messageId, ...(out.edit ? { additionalAttributes: { edit: out.edit } } : {}) });
    } catch (err) {
      throw classifySendError(err);
    }
  }

  async sendReadReceipt(chat: string, messages: ReadonlyArray<{ id: string; participant?: string | undefined }>): Promise<void> {
    if (this.#closed || !this.#sock.ws.isOpen) throw new SendNotWrittenError('not sent: the connection is not open');
    try {
      await this.#sock.readMessages(messages.map((m) => ({ remoteJid: chat, id: m.id, fromMe: false, ...(m.participant ? { participant: m.participant } : {}) })));
    } catch (err) {
      throw classifySendError(err);
    }
  }

  async requestMediaReupload(chat: string, message: { id: string; participant?: string | undefined }, media: InboundMediaRef): Promise<{ directPath: string; url: string }> {
    if (this.#closed || !this.#sock.ws.isOpen) throw new SendNotWrittenError('not sent: the connection is not open');
    const content = { mediaKey: Buffer.from(media.mediaKey, 'base64'), directPath: media.directPath, url: media.url };
    const msg = {
      key: { remoteJid: chat, id: message.id, fromMe: false, ...(message.participant ? { participant: message.participant } : {}) },
      message: { [`${media.mediaType}Message`]: content },
    } as WAMessage;
    let timer: NodeJS.Timeout | undefined;
    try {
      // Baileys waits for the phone's answer (a mediaretry notification) without a deadline of its own.
      await Promise.race([
        this.#sock.updateMediaMessage(msg),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`the sender's phone did not answer the re-upload request within ${MEDIA_REUPLOAD_TIMEOUT_MS} ms`)), MEDIA_REUPLOAD_TIMEOUT_MS);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    if (!content.directPath) throw new Error('the re-upload answer named no file');
    // The new file is on the host the message's URL named (Baileys would put it on the host of
    // its own last media_conn, which a receiving-only account may never have asked for).
    const host = media.url ? new URL(media.url).host : null;
    return { directPath: content.directPath, url: host ? `https://${host}${content.directPath}` : (content.url ?? '') };
  }

  async ping(deadlineMs: number): Promise<void> {
    await this.#sock.query(
      { tag: 'iq', attrs: { to: SERVER_JID, type: 'get', xmlns: 'w:p' }, content: [{ tag: 'ping', attrs: {} }] },
      deadlineMs,
    );
  }

  requestPairingCode(phone: string): Promise<string> {
    return this.#sock.requestPairingCode(phone);
  }

  async resolveIdentity(jid: string): Promise<string | null> {
    if (this.#closed || !this.#sock.ws.isOpen) return null;
    // Baileys' mapping store: its cache, then the lid-mapping keys; for a number, then a usync
    // LID query (the answer is stored, so later lookups find it without asking).
    const mapping = this.#sock.signalRepository.lidMapping;
    const other = isLidUser(jid) ? await mapping.getPNForLID(jid) : isPnUser(jid) ? await mapping.getLIDForPN(jid) : null;
    return other ? jidNormalizedUser(other) : null;
  }

  terminate(close: CloseInfo): void {
    this.#reportClose(close);
    const ws = (this.#sock.ws as unknown as { socket: { terminate(): void } | null }).socket;
    try {
      ws?.terminate();
    } catch (err) {
      this.#log.debug({ err }, 'terminate failed');
    }
    void this.#sock.end(undefined);
  }

  async logout(): Promise<void> {
    await this.#sock.logout();
  }

  /** The group metadata query Baileys would send itself before a group send (it reaches only the server). */
  async #fetchGroupMetadata(jid: string): Promise<GroupMetadata> {
    try {
      return await this.#sock.groupMetadata(jid);
    } catch (err) {
      throw groupMetadataFailed(jid, err);
    }
  }

  #emit(e: WaEvent): void {
    for (const l of this.#listeners) l(e);
  }

  #reportClose(close: CloseInfo): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#emit({ type: 'close', close });
  }

  /**
   * A retry receipt to the sender of a message this account received and cannot read (inbound-
   * capture.ts: a copy whose key was already used). It is the protocol's own answer, the one
   * Baileys sends for every other failed decryption, and goes to that message's sender alone with
   * no content, so it does not pass the send gate (docs/architecture.md).
   */
  #askSenderAgain(node: BinaryNode): void {
    if (this.#closed || !this.#sock.ws.isOpen) return; // the server hands the copy out again on the next connection
    this.#sock.sendRetryRequest(node).catch((err: unknown) => this.#log.warn({ err }, 'asking a sender again for a message whose key was already used failed'));
  }

  #wire(): void {
    const sock = this.#sock;
    sock.ws.on('unexpected-response', (_req: unknown, res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      this.terminate({ code: status, name: 'upgrade_refused', message: `server refused the websocket upgrade with HTTP ${status}` });
    });
    // Baileys surfaces only failed server acks; the successful `<ack class="message">` is what
    // tells the outbox the server took the message, so it is read off the socket here.
    sock.ws.on('CB:ack,class:message', (node: { attrs: Record<string, string> }) => {
      if (this.#closed || !node.attrs.id) return;
      const { id, from, error } = node.attrs;
      this.#emit({ type: 'ack', messageId: id, chat: from ?? '', status: error ? 'error' : 'server', ...(error ? { error } : {}) });
    });
    // A recipient that could not decrypt a message of ours asks for it again; Baileys answers it.
    sock.ws.on('CB:receipt', (node: BinaryNode) => {
      if (this.#closed || node.attrs.type !== 'retry' || !node.attrs.id) return;
      const retry = Array.isArray(node.content) ? node.content.find((c) => c.tag === 'retry') : undefined;
      this.#emit({ type: 'retry_requested', messageId: node.attrs.id, from: node.attrs.participant ?? node.attrs.from ?? '', count: Number(retry?.attrs.count ?? 1) || 1 });
    });
    // Ahead of Baileys' own listener, so the envelope is known before any decryption starts.
    sock.ws.prependListener('CB:message', (node: BinaryNode) => this.#capture.onStanza(node));
    sock.ws.on('frame', () => {
      if (!this.#closed) this.#emit({ type: 'stanza_in' });
    });
    // Baileys has no event for what it writes, so the ws socket's send is wrapped (makeWASocket
    // has made the socket by now): status then shows the last stanza of any kind the account
    // sent, receipts and Baileys' own iqs included, not only the keepalive probes.
    const raw = (sock.ws as unknown as { socket: { send: (...args: unknown[]) => void } | null }).socket;
    if (raw) {
      const send = raw.send.bind(raw);
      raw.send = (...args: unknown[]) => {
        if (!this.#closed) this.#emit({ type: 'stanza_out' });
        send(...args);
      };
    }
    sock.ev.on('connection.update', (u: Partial<ConnectionState>) => {
      if (this.#closed) return;
      if (u.qr) this.#emit({ type: 'qr', qr: u.qr });
      if (u.connection === 'open') {
        const me = sock.user;
        this.#emit({ type: 'open', jid: me?.id ?? '', name: me?.name ?? null });
      }
      if (u.connection === 'close') this.#reportClose(closeInfoFrom(u.lastDisconnect?.error));
    });
    sock.ev.on('creds.update', () => {
      // Saved before anything else sees the change: the 515 reconnect after pairing depends on it.
      const saved = this.#store.saveCreds();
      if (!saved) {
        if (!this.#closed) this.#emit({ type: 'creds_saved' });
        return;
      }
      saved.then(
        () => {
          if (!this.#closed) this.#emit({ type: 'creds_saved' });
        },
        (err: unknown) => this.#log.error({ err }, 'saving creds failed'),
      );
    });
    sock.ev.on('messages.upsert', ({ messages, type }) => {
      for (const m of messages) {
        const id = m.key.id;
        const chat = m.key.remoteJid;
        if (!id || !chat) continue;
        if (m.key.fromMe) {
          this.#emit({ type: 'echo', messageId: id, chat });
          // Baileys' event buffer folds a receipt that arrives while it is buffering into the
          // upsert of our own message instead of emitting messages.update: read the status here too.
          const status = ackStatusOf(m.status);
          if (status) this.#emit({ type: 'ack', messageId: id, chat, status });
        }
        else {
          // Already emitted before the receipt (inbound-capture.ts); this is the backstop for
          // what never went through decryption (a stanza with nothing to decrypt, a newsletter
          // post), and the inbox keeps one row per message id whichever path reports it.
          const inbound = toInbound(m, type === 'append');
          if (inbound) this.#emit({ type: 'inbound', message: inbound });
        }
      }
    });
    // What the connection learns about groups keeps the metadata cache current.
    sock.ev.on('groups.upsert', (groups) => {
      for (const g of groups) if (g.id && Array.isArray(g.participants)) this.#groups.put(g.id, g);
    });
    sock.ev.on('groups.update', (updates) => {
      for (const { id, author: _a, authorPn: _p, authorUsername: _u, ...update } of updates) {
        if (!id) continue;
        if (Array.isArray(update.participants)) this.#groups.put(id, { ...update, id } as GroupMetadata);
        else this.#groups.merge(id, update);
      }
    });
    sock.ev.on('group-participants.update', ({ id }) => this.#groups.forget(id));
    // The same notifications, reported as events (who joined or left, what setting changed).
    sock.ev.on('group-participants.update', (u) => {
      const event = groupParticipantsEvent(u);
      if (event) this.#emit(event);
    });
    sock.ev.on('groups.update', (updates) => {
      for (const u of updates) {
        const event = groupUpdatedEvent(u);
        if (event) this.#emit(event);
      }
    });
    sock.ev.on('messages.update', (updates) => {
      for (const u of updates) {
        if (!u.key.fromMe || !u.key.id || !u.key.remoteJid) continue;
        const status = ackStatusOf(u.update.status);
        if (status) this.#emit({ type: 'ack', messageId: u.key.id, chat: u.key.remoteJid, status });
      }
    });
  }
}

/** Reads code, name and message from the error Baileys attaches to a close. */
function closeInfoFrom(error: unknown): CloseInfo {
  const boom = error as { output?: { statusCode?: number; payload?: { message?: string } }; message?: string; data?: unknown } | undefined;
  const code = boom?.output?.statusCode ?? null;
  const name = code !== null ? (CLOSE_CODE_NAMES[code] ?? DisconnectReason[code] ?? `code${code}`) : 'unknown';
  return { code, name: String(name), message: boom?.message ?? boom?.output?.payload?.message ?? 'connection closed' };
}
