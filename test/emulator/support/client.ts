/**
 * Real Baileys clients for the emulator self-tests: short timings, silent logger, in-memory
 * auth, and event-driven waits on `connection.update`.
 */
import makeWASocket, {
  type AuthenticationState,
  type ConnectionState,
  DisconnectReason,
  type UserFacingSocketConfig,
  type WAMessage,
  type WASocket,
} from '@whiskeysockets/baileys';
import { pino } from 'pino';
import { type Emulator, createEmulator } from '../../../src/emulator/index.js';
import { memoryAuthState } from './auth.js';

/** Short timings so a lost connection or a missing answer shows up within seconds. */
export const FAST = {
  keepAliveIntervalMs: 5_000,
  connectTimeoutMs: 5_000,
  defaultQueryTimeoutMs: 5_000,
} as const;

const openClients = new Set<WASocket>();

/** A Baileys socket connected to `url`; closed by `closeAllClients()`. */
export function makeClient(url: string, auth: AuthenticationState, overrides: Partial<UserFacingSocketConfig> = {}): WASocket {
  const sock = makeWASocket({
    waWebSocketUrl: url,
    auth,
    logger: pino({ level: 'silent' }),
    ...FAST,
    ...overrides,
  });
  openClients.add(sock);
  sock.ev.on('connection.update', ({ connection }) => {
    if (connection === 'close') openClients.delete(sock);
  });
  return sock;
}

/** Ends every client still open (for afterEach). */
export function closeAllClients(): void {
  for (const sock of openClients) sock.end(undefined);
  openClients.clear();
}

/** How Baileys reported a close. */
export interface ReportedClose {
  code: number | undefined;
  name: string | undefined;
  message: string | undefined;
  /** Epoch ms when `connection: 'close'` was emitted. */
  at: number;
}

/** Resolves with the first `connection.update` that satisfies `predicate`. */
export function nextUpdate(
  sock: WASocket,
  predicate: (update: Partial<ConnectionState>) => boolean,
  timeoutMs = 15_000,
): Promise<Partial<ConnectionState>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.ev.off('connection.update', listener);
      reject(new Error(`no matching connection.update within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (update: Partial<ConnectionState>): void => {
      if (!predicate(update)) return;
      clearTimeout(timer);
      sock.ev.off('connection.update', listener);
      resolve(update);
    };
    sock.ev.on('connection.update', listener);
  });
}

/** Resolves with the next QR code Baileys emits. */
export async function nextQr(sock: WASocket, timeoutMs?: number): Promise<string> {
  const update = await nextUpdate(sock, (u) => typeof u.qr === 'string', timeoutMs);
  return update.qr!;
}

/** Resolves with how the socket closed. */
export async function closed(sock: WASocket, timeoutMs?: number): Promise<ReportedClose> {
  const update = await nextUpdate(sock, (u) => u.connection === 'close', timeoutMs);
  return describeClose(update);
}

/** Turns a close update into code, DisconnectReason name and message. */
export function describeClose(update: Partial<ConnectionState>): ReportedClose {
  const error = update.lastDisconnect?.error as { output?: { statusCode?: number }; message?: string } | undefined;
  const code = error?.output?.statusCode;
  return { code, name: code === undefined ? undefined : DisconnectReason[code], message: error?.message, at: Date.now() };
}

/** Resolves when the socket is open; rejects (with the close reason) if it closes first. */
export async function opened(sock: WASocket, timeoutMs?: number): Promise<void> {
  const update = await nextUpdate(sock, (u) => u.connection === 'open' || u.connection === 'close', timeoutMs);
  if (update.connection === 'close') {
    const close = describeClose(update);
    throw new Error(`closed before open: ${close.code} ${close.message}`);
  }
}

/** A paired account: its auth state (reusable for new sockets) and device jid. */
export interface PairedAccount {
  phone: string;
  auth: AuthenticationState;
  jid: string;
}

/** What pairing needs from an emulator: in-process or behind its control API. */
export interface PairingTarget {
  url: string;
  pair(request: { qr: string; phone: string }): Promise<{ jid: string }>;
}

/** Fresh creds -> QR -> the emulator scans it as `phone` -> 515. Leaves no socket open. */
export async function pairAccount(emulator: PairingTarget, phone: string): Promise<PairedAccount> {
  const auth = memoryAuthState();
  const sock = makeClient(emulator.url, auth);
  const qr = await nextQr(sock);
  const restart = closed(sock);
  const { jid } = await emulator.pair({ qr, phone });
  const close = await restart;
  if (close.code !== DisconnectReason.restartRequired) throw new Error(`expected 515 after pairing, got ${close.code}`);
  return { phone, auth, jid };
}

/** Pairs `phone` and logs in once (the first login uploads the prekeys); returns the open socket. */
export async function pairAndOpen(emulator: Emulator, phone: string, overrides?: Partial<UserFacingSocketConfig>): Promise<{ account: PairedAccount; sock: WASocket }> {
  const account = await pairAccount(emulator, phone);
  const sock = makeClient(emulator.url, account.auth, overrides);
  await opened(sock);
  return { account, sock };
}

/**
 * One emulator for a whole test file: created before the tests, closed after them, and every
 * Baileys client closed after each test. Read it as `env.emulator` inside tests.
 */
export function useEmulator(
  hooks: { beforeAll: (fn: () => Promise<void>) => void; afterAll: (fn: () => Promise<void>) => void; afterEach: (fn: () => void) => void },
  options?: Parameters<typeof createEmulator>[0],
): { emulator: Emulator } {
  const env = {} as { emulator: Emulator };
  hooks.beforeAll(async () => {
    env.emulator = await createEmulator(options);
  });
  hooks.afterEach(() => closeAllClients());
  hooks.afterAll(async () => {
    await env.emulator.close();
  });
  return env;
}

/** Resolves with the first upserted message satisfying `predicate`. */
export function upserted(sock: WASocket, predicate: (m: WAMessage) => boolean, timeoutMs = 10_000): Promise<WAMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no matching messages.upsert')), timeoutMs);
    const listener = ({ messages }: { messages: WAMessage[] }): void => {
      const message = messages.find(predicate);
      if (!message) return;
      clearTimeout(timer);
      sock.ev.off('messages.upsert', listener);
      resolve(message);
    };
    sock.ev.on('messages.upsert', listener);
  });
}

