// A hand-written fake of the WhatsApp connector: each connect() returns a FakeConnection the test
// drives (open, close with a code, QR), and records what the runner asked of it.
import { displayText, type OutboundContent } from '../../src/outbox/content.js';
import type { CloseInfo } from '../../src/accounts/close-policy.js';
import type { ConnectOptions, InboundMediaRef, WaConnection, WaConnector, WaEvent } from '../../src/wa/types.js';

/** One fake connection. */
export class FakeConnection implements WaConnection {
  readonly listeners: Array<(e: WaEvent) => void> = [];
  readonly sent: Array<{ jid: string; text: string; messageId: string }> = [];
  readonly readReceipts: Array<{ chat: string; ids: string[] }> = [];
  readonly pings: Array<{ deadlineMs: number; answer: () => void; fail: (err?: Error) => void }> = [];
  terminatedWith: CloseInfo | null = null;
  closed = false;
  /** When set, ping() answers at once. */
  autoAnswerPings = true;
  constructor(readonly opts: ConnectOptions) {}

  onEvent(listener: (event: WaEvent) => void): void {
    this.listeners.push(listener);
  }
  emit(e: WaEvent): void {
    for (const l of [...this.listeners]) l(e);
  }
  open(jid = '15550001111:1@s.whatsapp.net'): void {
    this.emit({ type: 'open', jid, name: null });
  }
  close(code: number | null, name = 'connectionClosed', message = 'closed'): void {
    if (this.closed) return;
    this.closed = true;
    this.emit({ type: 'close', close: { code, name, message } });
  }
  async send(jid: string, content: OutboundContent, messageId: string): Promise<void> {
    this.sent.push({ jid, text: displayText(content), messageId });
  }
  /** Replaceable: what a media re-upload request answers. */
  requestMediaReupload: (chat: string, message: { id: string }, media: InboundMediaRef) => Promise<{ directPath: string; url: string }> = async () => {
    throw new Error('no re-upload in this fake');
  };
  async sendReadReceipt(chat: string, messages: ReadonlyArray<{ id: string }>): Promise<void> {
    this.readReceipts.push({ chat, ids: messages.map((m) => m.id) });
  }
  ping(deadlineMs: number): Promise<void> {
    if (this.autoAnswerPings) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('ping timed out')), deadlineMs);
      this.pings.push({
        deadlineMs,
        answer: () => (clearTimeout(timer), resolve()),
        fail: (err) => (clearTimeout(timer), reject(err ?? new Error('failed'))),
      });
    });
  }
  /** What resolveIdentity answers, both ways (LID -> number JID, number JID -> LID). */
  readonly identities = new Map<string, string>();
  /** Replaceable, e.g. by one that never answers. */
  resolveIdentity: (jid: string) => Promise<string | null> = async (jid) => this.identities.get(jid) ?? null;
  async requestPairingCode(phone: string): Promise<string> {
    return `CODE${phone.slice(-4)}`;
  }
  terminate(close: CloseInfo): void {
    this.terminatedWith ??= close;
    if (this.closed) return;
    this.closed = true;
    this.emit({ type: 'close', close });
  }
  async logout(): Promise<void> {
    this.close(401, 'loggedOut', 'Intentional Logout');
  }
}

/** The fake connector: registered accounts, archived creds, every connection made. */
export class FakeConnector implements WaConnector {
  readonly connections: FakeConnection[] = [];
  readonly registered = new Set<string>();
  readonly archived: Array<{ account: string; reason: string }> = [];
  readonly #waiters: Array<(c: FakeConnection) => void> = [];

  connect(opts: ConnectOptions): WaConnection {
    const c = new FakeConnection(opts);
    this.connections.push(c);
    this.#waiters.splice(0).forEach((w) => w(c));
    return c;
  }
  isRegistered(account: string): boolean {
    return this.registered.has(account);
  }
  authCreatedAt(account: string): number | null {
    return this.registered.has(account) ? 0 : null;
  }
  readonly lidMap = new Map<string, string>();
  phoneJidForLid(_account: string, lidJid: string): string | null {
    return this.lidMap.get(lidJid) ?? null;
  }
  lidJidForPhone(_account: string | undefined, phoneJid: string): string | null {
    for (const [lid, phone] of this.lidMap) if (phone === phoneJid) return lid;
    return null;
  }
  archiveCreds(account: string, reason: string): boolean {
    this.archived.push({ account, reason });
    return this.registered.delete(account);
  }
  /** Media files by direct path, as downloadMedia serves them; every download is recorded. */
  readonly mediaFiles = new Map<string, Buffer>();
  readonly downloads: InboundMediaRef[] = [];
  /** Replaceable, e.g. by one that never answers. */
  downloadMedia: (ref: InboundMediaRef, opts?: { signal?: AbortSignal }) => Promise<AsyncIterable<Uint8Array>> = async (ref) => {
    this.downloads.push(ref);
    const file = this.mediaFiles.get(ref.directPath ?? '');
    if (!file) throw new Error(`Failed to fetch stream from ${ref.directPath}: 404`);
    return (async function* () {
      yield file;
    })();
  };
  /** The latest connection. */
  get last(): FakeConnection {
    const c = this.connections[this.connections.length - 1];
    if (!c) throw new Error('no connection yet');
    return c;
  }
  /** Resolves with the next connection made (or the n-th, counting from 1, if already made). */
  nextConnection(n = this.connections.length + 1): Promise<FakeConnection> {
    if (this.connections.length >= n) return Promise.resolve(this.connections[n - 1]!);
    return new Promise((resolve) => {
      const check = (c: FakeConnection) => (this.connections.length >= n ? resolve(this.connections[n - 1]!) : this.#waiters.push(check));
      this.#waiters.push(check);
    });
  }
}
