/**
 * The emulator as a library: `createEmulator()` starts a WhatsApp-like server on loopback
 * that unmodified Baileys connects to, and returns the handle tests (and the control API)
 * drive it with: pair, inject faults, send as a peer, read what peers decrypted, read the
 * timeline. Media goes through an HTTPS server on the same interface (media-server.ts).
 */
import { type BinaryNode } from '@whiskeysockets/baileys';
import { type Logger, pino } from 'pino';
import { type DecryptedNotice, EmulatorCore, type EmulatorSettings } from './core.js';
import { ControlServer } from './control-api.js';
import { DEFAULT_LATENCY_MS, MAX_LATENCY_MS } from './delay-line.js';
import { deliver, deliverToAll } from './delivery.js';
import { EmulatorError } from './errors.js';
import type { EventLog } from './event-log.js';
import { type FaultOutcome, injectFault } from './fault-actions.js';
import type { FaultSpec } from './faults.js';
import { type GroupInboundText, sendGroupInbound } from './group-inbound.js';
import { changeGroup } from './group-notifications.js';
import type { AddressingMode, Group, MemberRole, NewGroup } from './groups.js';
import { type InboundText, sendInbound } from './inbound.js';
import { sendRetryReceipt } from './retry-receipts.js';
import { onClientPayload } from './login.js';
import { MediaServer } from './media-server.js';
import type { MediaSummary } from './media-store.js';
import { type PairResult, scanQr } from './pairing.js';
import { enterPairingCode } from './pairing-code.js';
import { Session, type SessionHost } from './session.js';
import { routeStanza } from './stanza-router.js';
import { SERVER_JID } from './stanza.js';
import type { Timeline } from './timeline.js';
import type { DecryptedMessage, SentMessage } from './user.js';
import { CHAT_PATH, ChatServer } from './ws-server.js';
import { isPhoneNumber } from './world.js';

/** Options of `createEmulator` (all optional). */
export interface EmulatorOptions extends Partial<EmulatorSettings> {
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Port (default 0 = ephemeral). */
  port?: number;
  /** Port of the HTTPS media server, on the same interface (default 0 = ephemeral). */
  mediaPort?: number;
  /** 32-byte seed of the PKI root (default: the shared test root, see pki.ts). */
  rootSeed?: Buffer;
  /** pino logger for emulator events (default: silent, or stderr at $WA_EMULATOR_LOG's level). */
  logger?: Logger;
  /** Maximum timeline entries kept (default 50 000). */
  timelineLimit?: number;
}

/** One companion device of an account, as the control API lists it. */
export interface DeviceSummary {
  device: number;
  jid: string;
  platform: string;
  pairedAt: number;
  /** Connections currently logged in as this device. */
  online: number;
  /** How often a newer login replaced a live session of this device (a 440 conflict): two clients driving one account. */
  replaced: number;
  /** Stanzas waiting in its offline queue. */
  queued: number;
  /** One-time prekeys the server still holds for it. */
  preKeys: number;
}

/** A user with companions. */
export interface AccountSummary {
  phone: string;
  lid: string;
  devices: DeviceSummary[];
}

/** A group and its members, as the control API shows it. */
export interface GroupSummary {
  jid: string;
  subject: string;
  addressingMode: AddressingMode;
  /** The creator's phone number. */
  creator: string;
  participants: Array<{ phone: string; lid: string; jid: string; admin: MemberRole }>;
}

/** A change to a group, made as member `by` (default: the creator). */
export interface GroupUpdate {
  add?: string[];
  remove?: string[];
  subject?: string;
  by?: string;
}

/** A request to pair a registering client: a QR it showed, or a pairing code it requested. */
export type PairRequest = { phone: string; qr: string; code?: undefined } | { phone: string; code: string; qr?: undefined };

const DEFAULT_SETTINGS: EmulatorSettings = { idleMs: 0, qrRefs: 6, autoReceipt: 'delivery', offlineAckWaitMs: 2_000, latencyMs: DEFAULT_LATENCY_MS };

/** Starts an emulator; resolves once it is listening. */
export async function createEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const settings: EmulatorSettings = {
    idleMs: options.idleMs ?? DEFAULT_SETTINGS.idleMs,
    qrRefs: options.qrRefs ?? DEFAULT_SETTINGS.qrRefs,
    autoReceipt: options.autoReceipt ?? DEFAULT_SETTINGS.autoReceipt,
    offlineAckWaitMs: options.offlineAckWaitMs ?? DEFAULT_SETTINGS.offlineAckWaitMs,
    latencyMs: checkedLatency(options.latencyMs ?? DEFAULT_SETTINGS.latencyMs, 'latencyMs'),
  };
  const core = new EmulatorCore(settings, options.logger ?? defaultLogger(), options.rootSeed, options.timelineLimit);
  const emulator = new Emulator(core);
  await emulator.listen(options.port ?? 0, options.host ?? '127.0.0.1', options.mediaPort ?? 0);
  return emulator;
}

/** A running emulator. */
export class Emulator {
  private readonly server: ChatServer;
  private mediaServer: MediaServer | null = null;
  private control: ControlServer | null = null;
  private boundHost = '127.0.0.1';
  private boundPort = 0;

  constructor(private readonly core: EmulatorCore) {
    const host: SessionHost = {
      timeline: core.timeline,
      events: core.events,
      staticKey: core.staticKey,
      certChain: core.certChain,
      outboundLatencyMs: () => core.settings.latencyMs,
      onClientPayload: (session, payload) => onClientPayload(core, session, payload),
      onStanza: (session, node) => routeStanza(core, session, node),
      onClosed: (session) => {
        core.sessions.remove(session);
        core.pairing.forget(session.id);
      },
    };
    this.server = new ChatServer({
      refusal: (phoneHint) => core.faults.takeUpgradeRefusal(phoneHint),
      accept: (ws, socket, phoneHint) => {
        const session = new Session(core.sessions.allocateId(), ws, socket, host, core.idleWindowFor(phoneHint), phoneHint);
        core.sessions.add(session);
        session.event(`connected from ${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`);
      },
      rejected: (status, why) => core.events.add(null, null, `${why} (HTTP ${status})`),
    });
  }

  /** @internal Binds the chat server and the media server (called by createEmulator). */
  async listen(port: number, host: string, mediaPort = 0): Promise<void> {
    this.boundPort = await this.server.listen(port, host);
    this.boundHost = host;
    const credentials = this.core.mediaCa.issueServer([host, '127.0.0.1', '::1', 'localhost']);
    this.mediaServer = new MediaServer(this.core.media, credentials, (phone, text) => this.core.events.add(phone, null, text));
    const bound = await this.mediaServer.listen(mediaPort, host);
    this.core.media.host = `${host.includes(':') ? `[${host}]` : host}:${bound}`;
  }

  /** The WebSocket URL to give Baileys as `waWebSocketUrl`. */
  get url(): string {
    const host = this.boundHost.includes(':') ? `[${this.boundHost}]` : this.boundHost;
    return `ws://${host}:${this.boundPort}${CHAT_PATH}`;
  }

  /** The port the chat server listens on. */
  get port(): number {
    return this.boundPort;
  }

  /** The PKI root public key clients must trust (32 bytes). */
  get rootPublicKey(): Buffer {
    return this.core.pki.root.public;
  }

  /** The certificate chain the emulator presents in its ServerHello (encoded CertChain). */
  get certificateChain(): Buffer {
    return this.core.certChain;
  }

  /** The emulator's Noise static public key (what the leaf certificate certifies). */
  get staticPublicKey(): Buffer {
    return this.core.staticKey.public;
  }

  /** `host:port` of the HTTPS media server, as `media_conn` names it. */
  get mediaHost(): string {
    return this.core.media.host;
  }

  /** The test CA (PEM) the media server's certificate chains to; see media-trust.ts. */
  get mediaCaPem(): string {
    return this.core.mediaCa.pem;
  }

  /** Every media file stored: uploads and files simulated peers sent. */
  media(): MediaSummary[] {
    return this.core.media.list();
  }

  /**
   * Corrupts a stored media file (by direct path or URL) now, or, without one, the next file
   * stored, so a phone's or client's integrity checks can be seen to fail.
   */
  tamperMedia(directPath?: string): MediaSummary | null {
    if (directPath === undefined) {
      this.core.media.armTamper();
      this.core.events.add(null, null, 'armed: the next media file stored is corrupted');
      return null;
    }
    const stored = this.core.media.tamper(directPath);
    if (!stored) throw new EmulatorError(404, 'unknown_media', `directPath: nothing stored at ${directPath}`, 'directPath');
    this.core.events.add(stored.storedBy, null, `media ${stored.directPath} corrupted by a test`);
    return this.core.media.list().find((m) => m.directPath === stored.directPath) ?? null;
  }

  /** Expires a stored media file (downloads answer 410 until the sender's phone uploads it again on request). */
  expireMedia(directPath: string): MediaSummary {
    const stored = this.core.media.expire(directPath);
    if (!stored) throw new EmulatorError(404, 'unknown_media', `directPath: nothing stored at ${directPath}`, 'directPath');
    this.core.events.add(stored.storedBy, null, `media ${stored.directPath} expired by a test`);
    return this.core.media.list().find((m) => m.directPath === stored.directPath)!;
  }

  /** Media files simulated phones uploaded again on an account's request. */
  get mediaReuploads(): number {
    return this.core.mediaReuploads;
  }

  /** Holds the next media upload unanswered (media-store.ts armHold); `held` counts the holds that happened. */
  holdMediaUpload(stage: 'before-store' | 'after-store'): void {
    this.core.media.armHold(stage);
    this.core.events.add(null, null, `armed: the next media upload is held ${stage === 'before-store' ? 'before' : 'after'} its file is stored`);
  }

  /** Times simulated peers re-sent a message after an account's retry receipt (all, or one id). */
  inboundResends(id?: string): number {
    return this.core.inboundResends.resends(id);
  }

  /**
   * Delivers a peer's message to the account again exactly as first delivered (the same
   * ciphertext), as a server that hands a message out twice does; answers how many companions
   * it went to (0 for an id no peer sent through `sendInbound`).
   */
  redeliverInbound(id: string): number {
    const entry = this.core.inboundResends.get(id);
    const copies = entry?.copies ?? [];
    for (const { companion, node } of copies) deliver(this.core, entry!.account, companion, node);
    if (copies.length) this.core.events.add(null, null, `message ${id} delivered again as first sent (${copies.length} companion(s))`);
    return copies.length;
  }

  /** Times a simulated peer started a new session from the keys an account's retry receipt carried (all, or one id). */
  inboundSessionsRebuilt(id?: string): number {
    return this.core.inboundResends.sessionsRebuilt(id);
  }

  /** Media uploads held so far. */
  get mediaUploadsHeld(): number {
    return this.core.media.held;
  }

  /** Resolves once `n` media uploads have been held in all. */
  waitMediaUploadsHeld(n = 1): Promise<void> {
    return this.core.media.waitHeld(n);
  }

  /** Every stanza both ways. */
  get timeline(): Timeline {
    return this.core.timeline;
  }

  /** Connection and account events (connects, closes, faults, pairings, unhandled iqs). */
  get events(): EventLog {
    return this.core.events;
  }

  /** Pairs a registering client by QR text or pairing code, as the phone `phone`. */
  pair(request: PairRequest): Promise<PairResult> {
    assertPhone(request.phone, 'phone');
    if (request.qr !== undefined) return scanQr(this.core, request.qr, request.phone);
    return enterPairingCode(this.core, request.code, request.phone);
  }

  /** Injects a fault for an account (see faults.ts for what each kind does). */
  injectFault(phone: string, fault: FaultSpec): FaultOutcome {
    assertPhone(phone, 'phone');
    return injectFault(this.core, phone, fault);
  }

  /** Clears armed faults of one account, or of all. */
  clearFaults(phone?: string): void {
    this.core.faults.clear(phone);
  }

  /** Faults currently armed for an account. */
  armedFaults(phone: string): FaultSpec[] {
    return this.core.faults.describe(phone);
  }

  /** A peer sends a text, or a file (`media`), to an account. */
  sendInbound(request: InboundText): Promise<{ id: string; delivered: boolean }> {
    assertPhone(request.from, 'from');
    assertPhone(request.to, 'to');
    return sendInbound(this.core, request);
  }

  /**
   * Creates a group of accounts and/or simulated peers (unknown numbers become peers). Answers
   * its JID, `<id>@g.us`; members then read it with the group metadata query.
   */
  createGroup(request: NewGroup): GroupSummary {
    request.participants.forEach((p, i) => assertPhone(p, `participants[${i}]`));
    (request.admins ?? []).forEach((p, i) => assertPhone(p, `admins[${i}]`));
    const group = this.core.groups.create(request, (phone) => this.core.world.ensureUser(phone));
    this.core.events.add(null, null, `group ${group.jid} created with ${group.members.size} member(s)`);
    return summariseGroup(group);
  }

  /** A group and its members now. */
  group(jid: string): GroupSummary {
    return summariseGroup(this.knownGroup(jid));
  }

  /**
   * Adds or removes members or sets the subject, as member `by`, and pushes the `w:gp2`
   * notifications to the members' companions (and to those removed).
   */
  updateGroup(jid: string, update: GroupUpdate): GroupSummary {
    const group = this.knownGroup(jid);
    const users = (phones: string[] | undefined, field: string) =>
      phones?.map((p, i) => {
        assertPhone(p, `${field}[${i}]`);
        return this.core.world.ensureUser(p);
      });
    if (update.by !== undefined) assertPhone(update.by, 'by');
    changeGroup(this.core, group, {
      ...(update.add ? { add: users(update.add, 'add')! } : {}),
      ...(update.remove ? { remove: users(update.remove, 'remove')! } : {}),
      ...(update.subject !== undefined ? { subject: update.subject } : {}),
      ...(update.by !== undefined ? { by: this.core.world.ensureUser(update.by) } : {}),
    });
    return summariseGroup(group);
  }

  /** A simulated member sends a text or a file to a group; every account in it receives it. */
  sendGroupInbound(request: GroupInboundText): Promise<{ id: string; delivered: boolean; companions: number }> {
    assertPhone(request.from, 'from');
    if (request.to !== undefined) assertPhone(request.to, 'to');
    return sendGroupInbound(this.core, request);
  }

  private knownGroup(jid: string): Group {
    const group = this.core.groups.get(jid);
    if (!group) throw new EmulatorError(404, 'unknown_group', `group: no group ${jid}`, 'group');
    return group;
  }

  /** A peer sends a receipt (e.g. `read`) for a message an account sent it. */
  sendReceipt(request: { from: string; to: string; id: string; type?: 'read' | 'delivery' | 'played' }): void {
    assertPhone(request.from, 'from');
    const account = this.core.world.user(request.to);
    if (!account || account.companions.size === 0) throw new EmulatorError(404, 'unknown_account', `to: ${request.to} has no companion`, 'to');
    const peer = this.core.world.ensureUser(request.from);
    const attrs: Record<string, string> = { from: peer.jid, id: request.id, t: String(Math.floor(Date.now() / 1000)) };
    if (request.type && request.type !== 'delivery') attrs.type = request.type;
    deliverToAll(this.core, account, { tag: 'receipt', attrs });
  }

  /**
   * The next copy `peer`'s phone gets of message `id` (or of any message, without an id) fails to
   * decrypt: the phone records nothing and sends the sender a retry receipt, as a real phone does.
   */
  failDecrypt(peer: string, opts: { id?: string | undefined; hold?: boolean | undefined } = {}): void {
    this.core.decryptFailures.arm(peer, opts.id ?? null, opts.hold ?? false);
    this.core.events.add(peer, null, `armed: the next copy of ${opts.id ?? 'any message'} fails to decrypt at ${peer}${opts.hold ? ' (retry receipt held)' : ''}`);
  }

  /** Sends the retry receipts `peer`'s phone held back (failDecrypt with hold); answers how many. */
  releaseRetries(peer: string): number {
    const user = this.core.world.user(peer);
    const held = this.core.decryptFailures.release(peer);
    if (user) for (const r of held) sendRetryReceipt(this.core, user, r.sender, r.id, r.lidAddressed, `${peer} could not decrypt it (released)`, r.group);
    return user ? held.length : 0;
  }

  /** Retry receipts a peer's phone has sent (armed failures and real ones). */
  retryReceiptsSent(peer: string): number {
    return this.core.decryptFailures.sentBy(peer);
  }

  /** Messages a peer's phone decrypted (one entry per id; `copies` counts wire duplicates). */
  peerMessages(phone: string): DecryptedMessage[] {
    return [...(this.core.world.user(phone)?.received.values() ?? [])];
  }

  /** Every user whose phone decrypted at least one message, so a checker can look at all of them, not only the ones it expects. */
  peers(): Array<{ phone: string; received: number }> {
    return this.core.world
      .users()
      .filter((user) => user.received.size > 0)
      .map((user) => ({ phone: user.phone, received: user.received.size }));
  }

  /** Device-sent copies an account's own phone decrypted from its companions. */
  ownPhoneMessages(phone: string): DecryptedMessage[] {
    return [...(this.core.world.user(phone)?.ownSent.values() ?? [])];
  }

  /** Messages the emulator sent as this peer, with their delivery status. */
  sentMessages(phone: string): SentMessage[] {
    return [...(this.core.world.user(phone)?.sent.values() ?? [])];
  }

  /** Resolves when `phone`'s phone has decrypted a message matching `predicate` (already, or later). */
  waitForDecrypted(
    phone: string,
    predicate: (message: DecryptedMessage) => boolean = () => true,
    options: { own?: boolean; timeoutMs?: number } = {},
  ): Promise<DecryptedMessage> {
    const own = options.own ?? false;
    const existing = (own ? this.ownPhoneMessages(phone) : this.peerMessages(phone)).find(predicate);
    if (existing) return Promise.resolve(existing);
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const onNotice = (notice: DecryptedNotice): void => {
        if (notice.phone === phone && notice.own === own && predicate(notice.message)) finish(null, notice.message);
      };
      const finish = (error: Error | null, message?: DecryptedMessage): void => {
        clearTimeout(timer);
        this.core.notices.off('decrypted', onNotice);
        if (error) reject(error);
        else resolve(message!);
      };
      const timer = setTimeout(() => finish(new Error(`${phone} decrypted no matching message within ${timeoutMs} ms`)), timeoutMs);
      this.core.notices.on('decrypted', onNotice);
    });
  }

  /** Sets the idle window (ms, 0 = off) for new connections of one account, or the default. */
  setIdleWindow(ms: number, phone?: string): void {
    if (phone === undefined) this.core.settings.idleMs = ms;
    else this.core.idleOverrides.set(phone, ms);
    for (const session of this.core.sessions.all()) {
      if (phone === undefined || session.phone === phone) session.setIdleWindow(this.core.idleWindowFor(session.phone));
    }
  }

  /** The latency (ms) of every frame the emulator sends. */
  get latencyMs(): number {
    return this.core.settings.latencyMs;
  }

  /**
   * Sets the latency of every frame the emulator sends from now on, live connections included
   * (0 = at once). Frames already in flight keep their place: nothing is reordered.
   */
  setLatency(ms: number): void {
    this.core.settings.latencyMs = checkedLatency(ms);
    this.core.events.add(null, null, `latency set to ${this.core.settings.latencyMs} ms`);
  }

  /** Sends `<ib><edge_routing>` to an account's live connections (they reconnect with `ED` intro). */
  sendEdgeRouting(phone: string, routingInfo: Buffer): number {
    const node: BinaryNode = {
      tag: 'ib',
      attrs: { from: SERVER_JID },
      content: [{ tag: 'edge_routing', attrs: {}, content: [{ tag: 'routing_info', attrs: {}, content: routingInfo }] }],
    };
    const live = this.core.sessions.live(phone);
    for (const session of live) session.send(node);
    return live.length;
  }

  /** Live connections of an account: id, device, state and the routing info they presented. */
  connections(phone: string): Array<{ id: number; device: number | null; state: string; routingInfo: string | null }> {
    return this.core.sessions.ofAccount(phone).map((s) => ({
      id: s.id,
      device: s.device,
      state: s.state,
      routingInfo: s.routingInfo?.toString('hex') ?? null,
    }));
  }

  /** Users with companions. */
  accounts(): AccountSummary[] {
    return this.core.world.accounts().map((user) => ({
      phone: user.phone,
      lid: user.lid,
      devices: [...user.companions.values()].map((c) => ({
        device: c.device,
        jid: `${user.phone}:${c.device}@s.whatsapp.net`,
        platform: c.platform,
        pairedAt: c.pairedAt,
        online: this.core.sessions.live(user.phone, c.device).length,
        replaced: this.core.replaced.get(`${user.phone}:${c.device}`) ?? 0,
        queued: c.mailbox.size,
        preKeys: c.preKeys.size,
      })),
    }));
  }

  /** Starts the JSON control API on loopback (idempotent); resolves with its base URL. */
  async startControlApi(port = 0): Promise<string> {
    if (!this.control) {
      this.control = new ControlServer(this);
      await this.control.listen(port);
    }
    return this.control.url;
  }

  /** Stops the control API, the chat server and the media server, dropping every connection. */
  async close(): Promise<void> {
    await this.control?.close();
    this.control = null;
    await this.server.close();
    await this.mediaServer?.close();
    this.mediaServer = null;
  }
}

/** Silent unless WA_EMULATOR_LOG names a level; then events go to stderr (handy when a test fails). */
function defaultLogger(): Logger {
  const level = process.env.WA_EMULATOR_LOG;
  return level ? pino({ level, base: { component: 'emulator' } }, pino.destination({ fd: 2, sync: true })) : pino({ level: 'silent' });
}

function checkedLatency(ms: number, field = 'ms'): number {
  if (!Number.isInteger(ms) || ms < 0 || ms > MAX_LATENCY_MS) {
    throw new EmulatorError(400, 'bad_request', `${field}: latency must be an integer from 0 to ${MAX_LATENCY_MS}`, field);
  }
  return ms;
}

function summariseGroup(group: Group): GroupSummary {
  return {
    jid: group.jid,
    subject: group.subject,
    addressingMode: group.addressingMode,
    creator: group.creator.phone,
    participants: [...group.members.values()].map(({ user, role }) => ({ phone: user.phone, lid: user.lidJid, jid: group.memberJid(user), admin: role })),
  };
}

function assertPhone(value: string, field: string): void {
  if (!isPhoneNumber(value)) throw new EmulatorError(400, 'bad_phone', `${field}: must be 5–20 digits without '+'`, field);
}
