// A small world for integration tests: the WhatsApp emulator in this process, the real daemon as
// a child process trusting the emulator's root, a control client, and the daemon's event stream
// recorded so tests can wait on events instead of sleeping.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlClient } from '../../src/control/client.js';
import type { AccountSummary } from '../../src/control/wire.js';
import { MEDIA_CA_ENV, createEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/index.js';
import { expect } from 'vitest';
import { isolatedEnv, runCli, startDaemon, type DaemonProcess } from './cli-process.js';
import { makeTmpDir, writeConfig } from './tmp.js';

/** The compiled preload that makes the daemon's Baileys trust the emulator's root. */
export const PRELOAD = fileURLToPath(new URL('../../dist/emulator/preload.js', import.meta.url));

/** A recorded daemon event. */
export type DaemonEvent = Record<string, unknown> & { type: string; at: string; account?: string };

/** Fast settings so faults show within a second or two. */
export const FAST_CONFIG = {
  keepalive: { intervalMs: 1000, probeDeadlineMs: 600 },
  reconnect: { initialMs: 200, maxMs: 1000, factor: 2 },
  connectTimeoutMs: 4000,
  pacing: { enabled: false },
  log: { level: 'debug' },
};

/** A running world. */
export interface World {
  emulator: Emulator;
  daemon: DaemonProcess;
  client: ControlClient;
  socket: string;
  dir: string;
  configFile: string;
  env: NodeJS.ProcessEnv;
  nodeArgs: string[];
  events: DaemonEvent[];
  /** Resolves with the first event (already seen or future) matching pred, after index `from`. */
  waitEvent(pred: (e: DaemonEvent) => boolean, opts?: { timeoutMs?: number; from?: number }): Promise<DaemonEvent>;
  /** Waits until the account is in the given state (checks status first). */
  waitState(account: string, state: string, timeoutMs?: number): Promise<void>;
  account(id: string): Promise<AccountSummary>;
  /** Adds an account pointing at the emulator and pairs it by QR as the given phone. Resolves when open. */
  addAndPair(id: string, phone: string): Promise<string>;
  /** Pairs an existing account by QR as the given phone. Resolves when open. */
  pair(id: string, phone: string): Promise<string>;
  /** Stops the daemon (SIGTERM, or SIGKILL with `kill`) and starts it again on the same state directory. */
  restartDaemon(opts?: { kill?: boolean }): Promise<void>;
  /** What every daemon process of this world printed, the stopped ones first. */
  outputs(): string;
  close(): Promise<void>;
}

/** Starts the emulator and the daemon. */
export async function startWorld(
  opts: { config?: Record<string, unknown> | ((emulatorUrl: string) => Record<string, unknown>); emulator?: EmulatorOptions } = {},
): Promise<World> {
  const emulator = await createEmulator(opts.emulator);
  const tmp = makeTmpDir('waw-');
  const socket = join(tmp.dir, 'd.sock');
  const extra = typeof opts.config === 'function' ? opts.config(emulator.url) : opts.config;
  const configFile = writeConfig(tmp.dir, { stateDir: join(tmp.dir, 'state'), socket, ...FAST_CONFIG, ...extra });
  // The daemon trusts the emulator's root and, for media uploads and downloads, its media CA.
  const env = isolatedEnv(tmp.dir, { WA_EMULATOR_ROOT: emulator.rootPublicKey.toString('hex'), [MEDIA_CA_ENV]: emulator.mediaCaPem });
  const nodeArgs = ['--import', PRELOAD];
  const client = new ControlClient({ socket: { path: socket, source: 'flag' }, clientName: 'test' });
  const events: DaemonEvent[] = [];
  const waiters = new Set<{ pred: (e: DaemonEvent) => boolean; from: number; resolve: (e: DaemonEvent) => void }>();
  let streamAbort = new AbortController();

  const subscribe = async () => {
    streamAbort = new AbortController();
    let opened!: () => void;
    const open = new Promise<void>((r) => (opened = r));
    const done = client.stream(
      '/v1/events',
      (raw) => {
        const e = raw as DaemonEvent;
        events.push(e);
        for (const w of waiters) {
          if (events.length - 1 >= w.from && w.pred(e)) {
            waiters.delete(w);
            w.resolve(e);
          }
        }
      },
      { signal: streamAbort.signal, onOpen: () => opened() },
    );
    done.catch(() => {});
    await Promise.race([open, done]);
  };

  let daemon = await startDaemon(['--config', configFile], env, { nodeArgs });
  const before: string[] = [];
  await subscribe();

  const world: World = {
    emulator,
    get daemon() {
      return daemon;
    },
    client,
    socket,
    dir: tmp.dir,
    configFile,
    env,
    nodeArgs,
    events,
    waitEvent(pred, { timeoutMs = 20_000, from = 0 } = {}) {
      const found = events.slice(from).find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = {
          pred,
          from,
          resolve: (e: DaemonEvent) => {
            clearTimeout(timer);
            resolve(e);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`no matching daemon event within ${timeoutMs} ms; last events:\n${events.slice(-15).map((e) => JSON.stringify(e)).join('\n')}\ndaemon output tail:\n${daemon.output().slice(-3000)}`));
        }, timeoutMs);
        waiters.add(w);
      });
    },
    async waitState(account, state, timeoutMs = 20_000) {
      const from = events.length;
      if ((await world.account(account)).state === state) return;
      await world.waitEvent((e) => e.type === 'account.state' && e.account === account && e.state === state, { timeoutMs, from });
    },
    async account(id) {
      return (await client.request<AccountSummary>('GET', `/v1/accounts/${id}`)).body;
    },
    async addAndPair(id, phone) {
      await client.request('POST', '/v1/accounts', { id, wsUrl: emulator.url });
      return world.pair(id, phone);
    },
    async pair(id, phone) {
      let jid = '';
      let scanned = false;
      await client.stream(
        `/v1/accounts/${id}/pair`,
        (raw) => {
          const e = raw as { type: string; qr?: string; jid?: string; message?: string };
          if (e.type === 'qr' && !scanned) {
            scanned = true;
            void emulator.pair({ phone, qr: e.qr! });
          }
          if (e.type === 'paired') jid = e.jid!;
          if (e.type === 'error') throw new Error(`pairing failed: ${e.message}`);
        },
        { method: 'POST', body: {} },
      );
      if (!jid) throw new Error('pairing stream ended without paired');
      await world.waitState(id, 'open');
      return jid;
    },
    async restartDaemon({ kill = false } = {}) {
      streamAbort.abort();
      daemon.child.kill(kill ? 'SIGKILL' : 'SIGTERM');
      await daemon.exited;
      before.push(daemon.output());
      daemon = await startDaemon(['--config', configFile], env, { nodeArgs });
      await subscribe();
    },
    outputs: () => [...before, daemon.output()].join('\n'),
    async close() {
      streamAbort.abort();
      if (daemon.child.exitCode === null && daemon.child.signalCode === null) {
        daemon.child.kill('SIGTERM');
        const t = setTimeout(() => daemon.child.kill('SIGKILL'), 8000);
        await daemon.exited;
        clearTimeout(t);
      }
      await emulator.close();
      tmp.cleanup();
    },
  };
  return world;
}

/** For files where each test starts its own world: the returned function starts one, and every world it started is closed after each test. */
export function useWorlds(afterEach: (fn: () => Promise<void>) => void): (opts?: Parameters<typeof startWorld>[0]) => Promise<World> {
  const open: World[] = [];
  afterEach(async () => {
    for (const w of open.splice(0)) await w.close();
  });
  return async (opts) => {
    const w = await startWorld(opts);
    open.push(w);
    return w;
  };
}

/** What a send answers (the socket API's 202 body, or the CLI's --json line). */
export type Accepted = { id: number; messageId: string; state: string; reason?: string };

/** Sending through the socket API and through the CLI, for tests that run both entry points. */
export function senders(world: () => World): {
  viaApi: (account: string, to: string, text: string) => Promise<Accepted>;
  viaCli: (account: string, to: string, text: string) => Promise<Accepted>;
} {
  return {
    viaApi: async (account, to, text) => (await world().client.request<Accepted>('POST', '/v1/messages', { account, to, text })).body,
    viaCli: async (account, to, text) => {
      const w = world();
      const r = await runCli(['send', '--account', account, '--to', to, '--text', text, '--json', '--socket', w.socket], w.env);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as Accepted;
    },
  };
}
