// Compatibility: Baileys 7.0.0-rc.9 (installed beside rc14 as the npm alias `baileys-rc9`) pairs,
// logs in and sends through the emulator with its default latency, every time, with nothing
// between them. rc.9 derives its transport keys asynchronously after sending ClientFinish and
// drops (and then fails to decrypt everything after) a frame that arrives before that is done;
// an emulator answering on loopback with no latency beat it on about half of all connects.
//
// The emulator runs in its own process, as a user's would: in the same process the answer is
// late enough by accident. Setting WA_EMULATOR_RC9_RACE=1 also runs the demonstration that
// connects fail with `latencyMs: 0` (a race, so it is not part of the normal suite);
// WA_EMULATOR_RC9_RACE_MS=<ms> runs it at another latency and only reports the count (the table
// in docs/emulator.md, "Latency").
import makeWASocket, { type ConnectionState, DisconnectReason, WA_CERT_DETAILS, initAuthCreds } from 'baileys-rc9';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_LATENCY_MS, type EmulatorChild, startEmulatorChild } from '../../src/emulator/index.js';
import { memoryAuthState } from './support/auth.js';
import { TS_EXEC_ARGV } from './support/child-process.js';

type Rc9Socket = ReturnType<typeof makeWASocket>;
type Rc9Auth = Parameters<typeof makeWASocket>[0]['auth'];

const open = new Set<Rc9Socket>();

/** An rc.9 socket with in-memory auth (rc.9's own fresh creds) and short timings. */
function rc9Client(url: string, auth: Rc9Auth): Rc9Socket {
  const sock = makeWASocket({
    waWebSocketUrl: url,
    auth,
    logger: pino({ level: 'silent' }),
    keepAliveIntervalMs: 5_000,
    connectTimeoutMs: 5_000,
    defaultQueryTimeoutMs: 5_000,
  });
  open.add(sock);
  return sock;
}

function freshAuth(): Rc9Auth {
  return { creds: initAuthCreds(), keys: memoryAuthState().keys as unknown as Rc9Auth['keys'] };
}

/** The first connection.update matching `predicate`, or null after `timeoutMs`. */
function nextUpdate(sock: Rc9Socket, predicate: (u: Partial<ConnectionState>) => boolean, timeoutMs = 10_000): Promise<Partial<ConnectionState> | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(null), timeoutMs);
    const listener = (update: Partial<ConnectionState>): void => {
      if (predicate(update)) finish(update);
    };
    const finish = (update: Partial<ConnectionState> | null): void => {
      clearTimeout(timer);
      sock.ev.off('connection.update', listener);
      resolve(update);
    };
    sock.ev.on('connection.update', listener);
  });
}

function closeCode(update: Partial<ConnectionState> | null): number | undefined {
  return (update?.lastDisconnect?.error as { output?: { statusCode?: number } } | undefined)?.output?.statusCode;
}

/** Fresh creds connect: resolves with the QR, or null if this connect lost its first frame. */
async function registeringConnect(url: string, auth: Rc9Auth, timeoutMs?: number): Promise<{ sock: Rc9Socket; qr: string | null }> {
  const sock = rc9Client(url, auth);
  const update = await nextUpdate(sock, (u) => typeof u.qr === 'string' || u.connection === 'close', timeoutMs);
  return { sock, qr: typeof update?.qr === 'string' ? update.qr : null };
}

afterEach(() => {
  for (const sock of open) sock.end(undefined);
  open.clear();
});

describe('Baileys 7.0.0-rc.9 against the emulator (own process, default latency)', () => {
  let child: EmulatorChild;
  beforeAll(async () => {
    child = await startEmulatorChild({ execArgv: TS_EXEC_ARGV, args: ['--log-level', 'silent'] });
  });
  afterAll(async () => {
    if (child) expect(await child.stop()).toBe(0);
  });

  test('rc.9 checks only the issuer serial: there is no root key for the trust-root preload to set', () => {
    expect(WA_CERT_DETAILS).toEqual({ SERIAL: 0 });
  });

  test('5 of 5: QR, pair, 515, login to open, send, decrypted by the peer', async () => {
    expect(await child.client.latency()).toBe(DEFAULT_LATENCY_MS);
    const outcomes: string[] = [];
    for (let round = 1; round <= 5; round += 1) {
      const me = `1555700000${round}`;
      const peer = `1555700010${round}`;
      const auth = freshAuth();
      const { sock: pairing, qr } = await registeringConnect(child.url, auth);
      if (qr === null) {
        outcomes.push(`round ${round}: no QR`);
        continue;
      }
      const restart = nextUpdate(pairing, (u) => u.connection === 'close');
      expect(await child.client.pair({ qr, phone: me })).toMatchObject({ jid: `${me}:1@s.whatsapp.net` });
      expect(closeCode(await restart)).toBe(DisconnectReason.restartRequired);

      const sock = rc9Client(child.url, auth);
      const login = await nextUpdate(sock, (u) => u.connection === 'open' || u.connection === 'close');
      if (login?.connection !== 'open') {
        outcomes.push(`round ${round}: login ${login ? `closed ${closeCode(login)}` : 'never opened'}`);
        continue;
      }
      const sent = await sock.sendMessage(`${peer}@s.whatsapp.net`, { text: `rc.9 round ${round}` });
      const id = sent!.key.id!;
      await child.client.waitForStanza({ phone: me, dir: 'out', tag: 'receipt', contains: id, timeoutMs: 10_000 });
      expect(await child.client.peerMessages(peer)).toEqual([expect.objectContaining({ id, text: `rc.9 round ${round}`, copies: 1 })]);
      outcomes.push(`round ${round}: ok`);
      sock.end(undefined);
    }
    expect(outcomes).toEqual([1, 2, 3, 4, 5].map((round) => `round ${round}: ok`));
  }, 120_000);
});

const raceLatencyMs = Number(process.env.WA_EMULATOR_RC9_RACE_MS ?? 0);

describe.runIf(process.env.WA_EMULATOR_RC9_RACE === '1')(`the same client with latencyMs: ${raceLatencyMs} (demonstration)`, () => {
  let child: EmulatorChild;
  beforeAll(async () => {
    child = await startEmulatorChild({ execArgv: TS_EXEC_ARGV, args: ['--log-level', 'silent'], latencyMs: raceLatencyMs });
  });
  afterAll(async () => {
    if (child) expect(await child.stop()).toBe(0);
  });

  test('some of 20 fresh connects never show a QR: the pair-device frame beat the key derivation', async () => {
    // rc.9 lets the failed decryption of every later frame escape as an unhandled rejection;
    // here that is the evidence, so count those instead of letting them fail the run.
    const vitestHandlers = process.listeners('unhandledRejection');
    process.removeAllListeners('unhandledRejection');
    let undecryptable = 0;
    process.on('unhandledRejection', (reason) => {
      if (String((reason as Error)?.message).includes('unable to authenticate data')) undecryptable += 1;
      else for (const handler of vitestHandlers) handler(reason, Promise.resolve());
    });
    let withQr = 0;
    try {
      for (let attempt = 0; attempt < 20; attempt += 1) {
        const { sock, qr } = await registeringConnect(child.url, freshAuth(), 3_000);
        if (qr !== null) withQr += 1;
        sock.end(undefined);
      }
    } finally {
      process.removeAllListeners('unhandledRejection');
      for (const handler of vitestHandlers) process.on('unhandledRejection', handler);
    }
    console.log(`latency ${raceLatencyMs} ms: ${withQr} of 20 rc.9 connects got a QR (${undecryptable} later frames failed to decrypt)`);
    if (raceLatencyMs === 0) expect(withQr).toBeLessThan(20);
  }, 120_000);
});
