// Several real daemon processes sharing one real PostgreSQL server, against the emulator in this
// process: each daemon with its own state directory, socket, config and event stream, all listing
// the same accounts. For the cluster tests (docs/cluster.md).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ControlClient } from '../../src/control/client.js';
import type { AccountSummary, StatusResponse } from '../../src/control/wire.js';
import { MEDIA_CA_ENV, createEmulator, type Emulator } from '../../src/emulator/index.js';
import { isolatedEnv, startDaemon, type DaemonProcess } from './cli-process.js';
import { testPostgres, type TestPostgres } from './postgres.js';
import { makeTmpDir, writeConfig } from './tmp.js';
import { FAST_CONFIG, PRELOAD, type DaemonEvent } from './world.js';

export interface ClusterDaemon {
  id: string;
  socket: string;
  configFile: string;
  client: ControlClient;
  process: DaemonProcess | null;
  events: DaemonEvent[];
}

export interface ClusterWorld {
  emulator: Emulator;
  pg: TestPostgres;
  daemons: ClusterDaemon[];
  accounts: string[];
  /** The phone number each account is paired as. */
  phoneOf(account: string): string;
  status(d: ClusterDaemon): Promise<StatusResponse>;
  /** Account -> owning daemon id, as daemon `via` reads the cluster. */
  owners(via?: ClusterDaemon): Promise<Map<string, string | null>>;
  /** Polls until pred holds over a fresh status of `via` (a cluster's balance has no single event). */
  until(pred: (s: StatusResponse) => boolean, what: string, timeoutMs?: number, via?: ClusterDaemon): Promise<StatusResponse>;
  /** Pairs every account through its owner; resolves when each is open there. */
  pairAll(): Promise<void>;
  /** Accounts each daemon runs open now, from each daemon's own status. */
  openBy(): Promise<Map<string, string[]>>;
  /** 440 replacements the emulator saw, all accounts. */
  replaced(): number;
  start(d: ClusterDaemon): Promise<void>;
  kill(d: ClusterDaemon, signal: 'SIGKILL' | 'SIGTERM'): Promise<void>;
  close(): Promise<void>;
}

export async function startCluster(opts: {
  daemons: number;
  accounts: number;
  leaseTtlMs?: number;
  /** A store URL per daemon (default: the server's own), e.g. through a proxy. */
  storeUrl?: (i: number, url: string) => string;
  pg?: TestPostgres;
}): Promise<ClusterWorld> {
  const pg = opts.pg ?? (await testPostgres());
  const emulator = await createEmulator();
  const tmp = makeTmpDir('wac-');
  const env = isolatedEnv(tmp.dir, { WA_EMULATOR_ROOT: emulator.rootPublicKey.toString('hex'), [MEDIA_CA_ENV]: emulator.mediaCaPem });
  const accounts = Array.from({ length: opts.accounts }, (_, i) => `acc${String(i + 1).padStart(2, '0')}`);
  const phoneOf = (account: string) => `1555100${account.slice(3).padStart(4, '0')}`;
  const daemons: ClusterDaemon[] = Array.from({ length: opts.daemons }, (_, i) => {
    const id = `d${i + 1}`;
    const dir = join(tmp.dir, id);
    mkdirSync(dir, { mode: 0o700 });
    const socket = join(dir, 'd.sock');
    const configFile = writeConfig(dir, {
      stateDir: join(dir, 'state'),
      socket,
      ...FAST_CONFIG,
      log: { level: 'info' },
      store: { type: 'postgres', url: opts.storeUrl ? opts.storeUrl(i, pg.url) : pg.url, daemonId: id, ...(opts.leaseTtlMs ? { leaseTtlMs: opts.leaseTtlMs } : {}) },
      accounts: accounts.map((a) => ({ id: a, wsUrl: emulator.url })),
    });
    return { id, socket, configFile, client: new ControlClient({ socket: { path: socket, source: 'flag' }, clientName: 'test' }), process: null, events: [] };
  });
  const streams = new Map<ClusterDaemon, AbortController>();

  const start = async (d: ClusterDaemon) => {
    d.process = await startDaemon(['--config', d.configFile], env, { nodeArgs: ['--import', PRELOAD] });
    const abort = new AbortController();
    streams.set(d, abort);
    let opened!: () => void;
    const open = new Promise<void>((r) => (opened = r));
    const done = d.client.stream('/v1/events', (raw) => void d.events.push(raw as DaemonEvent), { signal: abort.signal, onOpen: () => opened() });
    done.catch(() => {});
    await Promise.race([open, done]);
  };
  await Promise.all(daemons.map(start));

  const status = async (d: ClusterDaemon) => (await d.client.request<StatusResponse>('GET', '/v1/status')).body;
  const live = () => daemons.find((d) => d.process && d.process.child.exitCode === null && d.process.child.signalCode === null)!;
  const world: ClusterWorld = {
    emulator,
    pg,
    daemons,
    accounts,
    phoneOf,
    status,
    async owners(via = live()) {
      const s = await status(via);
      return new Map(s.cluster!.leases.map((l) => [l.account, l.owner]));
    },
    async until(pred, what, timeoutMs = 30_000, via) {
      const deadline = Date.now() + timeoutMs;
      let last: StatusResponse | undefined;
      for (;;) {
        try {
          last = await status(via ?? live());
          if (pred(last)) return last;
        } catch {
          // a daemon stopping under the request: ask again
        }
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last cluster view:\n${JSON.stringify(last?.cluster, null, 1)?.slice(0, 4000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async pairAll() {
      const owners = await world.owners();
      await Promise.all(
        accounts.map(async (account) => {
          const d = daemons.find((x) => x.id === owners.get(account));
          if (!d) throw new Error(`account ${account} has no owner to pair through`);
          let scanned = false;
          let paired = false;
          let failed: string | undefined;
          await d.client.stream(
            `/v1/accounts/${account}/pair`,
            (raw) => {
              const e = raw as { type: string; qr?: string; message?: string };
              if (e.type === 'qr' && !scanned) {
                scanned = true;
                void emulator.pair({ phone: phoneOf(account), qr: e.qr! });
              }
              if (e.type === 'paired') paired = true;
              if (e.type === 'error') failed ??= e.message;
            },
            { method: 'POST', body: {} },
          );
          if (failed !== undefined) {
            // What the daemon said about its leases, for the reader of a failure.
            const said = (d.process?.output() ?? '').split('\n').filter((l) => /cluster|lease/.test(l)).slice(-20);
            throw new Error(`pairing ${account} through ${d.id} failed: ${failed}; ${d.id}'s last lease log lines:\n${said.join('\n')}`);
          }
          if (!paired) throw new Error(`pairing ${account} ended without paired`);
        }),
      );
      await world.until((s) => s.cluster!.leases.every((l) => l.state === 'open'), 'every account open');
    },
    async openBy() {
      const out = new Map<string, string[]>();
      for (const d of daemons) {
        if (!d.process || d.process.child.exitCode !== null || d.process.child.signalCode !== null) continue;
        const accs = (await d.client.request<{ accounts: AccountSummary[] }>('GET', '/v1/accounts')).body.accounts;
        out.set(d.id, accs.filter((a) => a.state === 'open').map((a) => a.id));
      }
      return out;
    },
    replaced() {
      return emulator.accounts().reduce((n, a) => n + a.devices.reduce((m, dev) => m + dev.replaced, 0), 0);
    },
    start,
    async kill(d, signal) {
      streams.get(d)?.abort();
      const p = d.process!;
      p.child.kill(signal);
      await p.exited;
    },
    async close() {
      for (const d of daemons) {
        streams.get(d)?.abort();
        const p = d.process;
        if (p && p.child.exitCode === null && p.child.signalCode === null) {
          p.child.kill('SIGTERM');
          const t = setTimeout(() => p.child.kill('SIGKILL'), 15_000);
          await p.exited;
          clearTimeout(t);
        }
      }
      await emulator.close();
      if (!opts.pg) await pg.stop();
      tmp.cleanup();
    },
  };
  return world;
}
