// Wiring: the one place that builds the daemon from its parts and takes it down in order.
import { AccountSupervisor } from '../accounts/supervisor.js';
import { readFileSync } from 'node:fs';
import type { EffectiveConfig, LoadedConfig } from '../config/load.js';
import { parseConfigText } from '../config/load.js';
import { ControlServer } from '../control/server.js';
import { dirname } from 'node:path';
import { buildRoutes } from '../control/routes.js';
import type { ClientSpec } from '../control/roles.js';
import type { DaemonInfo } from '../control/wire.js';
import { EventBus } from '../events/bus.js';
import type { Log } from '../log.js';
import { resolveSocketPath, describeSource, type PlatformEnv, currentPlatform } from '../platform/paths.js';
import { closeStateDb, openStateDb, type StateDb } from '../store/db.js';
import { lockStateDir, type StateDirLock } from '../store/lock.js';
import { VERSION } from '../version.js';
import { BaileysConnector } from '../wa/baileys-connection.js';
import { allowFromFromConfig, gateSettingsFromConfig, mediaLimitsFromConfig, webhookSettingsFromConfig } from '../config/gate-settings.js';
import { ConsumerService } from '../inbox/consumer-service.js';
import { ConsumerStore } from '../inbox/consumers.js';
import { OutboxChanges, type OutboxChangesBackend } from '../outbox/changes.js';
import { PgOutboxChanges } from '../outbox/pg-changes.js';
import { Inbox } from '../inbox/inbox.js';
import { InboxStore } from '../inbox/store.js';
import { PgAlertState } from '../alerts/pg-alert-state.js';
import { PgConsumerLocks } from '../inbox/pg-consumer-locks.js';
import { PgConsumerStore } from '../inbox/pg-consumers.js';
import { PgInboxStore } from '../inbox/pg-store.js';
import { InboundMediaCache } from '../inbox/media-cache.js';
import { InboxMedia } from '../inbox/media.js';
import { join } from 'node:path';
import { SendGate } from '../outbox/send-gate.js';
import { DEFAULT_LOOP_ALERT_MS, LoopHealth } from './loop-health.js';
import { DaemonMetrics } from './metrics.js';
import { MetricsListener } from './metrics-listener.js';
import { parseListen } from '../config/listen-address.js';
import { MediaStore } from '../outbox/media-store.js';
import { ALERT_REFRESH_MS, AlertEngine } from '../alerts/engine.js';
import { AlertMonitor } from '../alerts/monitor.js';
import { buildSinks } from '../alerts/build-sinks.js';
import { OutboxStore } from '../outbox/store.js';
import type { OutboxBackend } from '../outbox/backend.js';
import { ClusterOutbox } from '../outbox/cluster-outbox.js';
import { PgOutboxStore } from '../outbox/pg-store.js';
import { ClusterConnector } from '../wa/cluster-connector.js';
import type { WaConnector } from '../wa/types.js';
import { ClusterMember } from './cluster.js';
import { KeyedQueue } from '../keyed-queue.js';
import type { Fence } from '../cluster/lease-store.js';
import { pastMargin } from '../cluster/lease-keeper.js';
import { recordStart, recordStop } from './runs.js';
import { ensureStateDir } from './state-dir.js';

/** Default `inbox.retentionDays`, and how often retention runs. */
export const DEFAULT_INBOX_RETENTION_DAYS = 30;
const RETENTION_EVERY_MS = 3_600_000;

/** How long shutdown waits for in-flight control requests before cutting them. */
export const SHUTDOWN_GRACE_MS = 5000;

/** Options for starting the daemon. */
export interface DaemonOptions {
  loaded: LoadedConfig;
  /** The --socket flag, if given. */
  socketFlag?: string | undefined;
  log: Log;
  platform?: PlatformEnv;
}

/** A running daemon. */
export class Daemon {
  readonly bus: EventBus;
  readonly socketPath: string;
  readonly #log: Log;
  readonly #db: StateDb;
  readonly #lock: StateDirLock;
  readonly #server: ControlServer;
  readonly #clientServer: ControlServer | undefined;
  /** The configured clients, as both servers read them (a reload replaces the list). */
  readonly #clients: { list: readonly ClientSpec[] };
  readonly #runId: number;
  /** The account runners (status and commands read from them). */
  readonly accounts: AccountSupervisor;
  /** The send gate (outbox, policy). */
  readonly gate: SendGate;
  /** Inbound messages. */
  readonly inbox: Inbox;
  /** Inbox consumers (streams and webhooks). */
  readonly consumers: ConsumerService;
  /** Operator alerts. */
  readonly alerts: AlertEngine;
  readonly #monitor: AlertMonitor;
  #config: EffectiveConfig;
  readonly #configFile: string;
  readonly #platform: PlatformEnv;
  #stopping: Promise<void> | undefined;
  #retention: NodeJS.Timeout | undefined;
  readonly #outboxChanges: OutboxChangesBackend;
  readonly #loop: LoopHealth;
  readonly #metrics: DaemonMetrics;
  readonly #metricsListener: MetricsListener | undefined;
  /** Membership of a cluster (store.type "postgres"), or undefined. */
  readonly cluster: ClusterMember | undefined;
  /** In a cluster: folds the outbox's count deltas into the kept counts now and then. */
  #fold: NodeJS.Timeout | undefined;

  private constructor(parts: {
    bus: EventBus;
    socketPath: string;
    log: Log;
    db: StateDb;
    lock: StateDirLock;
    server: ControlServer;
    clientServer: ControlServer | undefined;
    clients: { list: readonly ClientSpec[] };
    runId: number;
    accounts: AccountSupervisor;
    gate: SendGate;
    inbox: Inbox;
    consumers: ConsumerService;
    outboxChanges: OutboxChangesBackend;
    alerts: AlertEngine;
    monitor: AlertMonitor;
    config: EffectiveConfig;
    configFile: string;
    platform: PlatformEnv;
    loop: LoopHealth;
    metrics: DaemonMetrics;
    metricsListener: MetricsListener | undefined;
    cluster: ClusterMember | undefined;
  }) {
    this.cluster = parts.cluster;
    this.#loop = parts.loop;
    this.#metrics = parts.metrics;
    this.#metricsListener = parts.metricsListener;
    this.bus = parts.bus;
    this.socketPath = parts.socketPath;
    this.#log = parts.log;
    this.#db = parts.db;
    this.#lock = parts.lock;
    this.#server = parts.server;
    this.#clientServer = parts.clientServer;
    this.#clients = parts.clients;
    this.#runId = parts.runId;
    this.accounts = parts.accounts;
    this.gate = parts.gate;
    this.inbox = parts.inbox;
    this.consumers = parts.consumers;
    this.#outboxChanges = parts.outboxChanges;
    this.alerts = parts.alerts;
    this.#monitor = parts.monitor;
    this.#config = parts.config;
    this.#configFile = parts.configFile;
    this.#platform = parts.platform;
  }

  /** Takes the state directory, opens the database, and listens on the control socket. */
  static async start(opts: DaemonOptions): Promise<Daemon> {
    const { loaded, log } = opts;
    const platform = opts.platform ?? currentPlatform();
    const cfg = loaded.config;
    const startedAt = new Date();

    const dirInfo = ensureStateDir(cfg.stateDir);
    if (dirInfo.looseMode !== undefined) {
      log.warn({ stateDir: cfg.stateDir, mode: dirInfo.looseMode.toString(8) }, 'state directory is open to other users; chmod 700 it');
    }
    const lock = lockStateDir(cfg.stateDir);
    let db: StateDb | undefined;
    let started: { monitor: AlertMonitor; alerts: AlertEngine; consumers: ConsumerService; inbox: Inbox; servers?: ControlServer[]; metricsListener?: MetricsListener } | undefined;
    let cluster: ClusterMember | undefined;
    try {
      db = openStateDb(cfg.stateDir);
      const socket = resolveSocketPath({ flag: opts.socketFlag, configSocket: cfg.socket, stateDir: cfg.stateDir, platform });
      // In a cluster the outbox and the auth state are in the shared PostgreSQL store (docs/cluster.md).
      if (cfg.store.type === 'postgres') {
        cluster = await ClusterMember.connect({ url: cfg.store.url, ttlMs: cfg.store.leaseTtlMs, daemonId: cfg.store.daemonId, socket: socket.path, log });
      }
      const { runId, crashed } = recordStart(db, VERSION, startedAt.getTime());
      const bus = new EventBus({ onListenerError: (err, event) => log.error({ err, type: event.type }, 'event listener failed') });
      const version = cfg.whatsappVersion ? { version: cfg.whatsappVersion } : {};
      let outboxStore: OutboxBackend;
      let connector: WaConnector & { phoneJidForLid: WaConnector['phoneJidForLid'] };
      let clusterConnector: ClusterConnector | undefined;
      if (cluster) {
        const member = cluster;
        const clusterOutbox = new ClusterOutbox(new PgOutboxStore(member.pool), { fenceOf: (a) => member.fenceOf(a), owned: () => member.owned() });
        outboxStore = clusterOutbox;
        clusterConnector = new ClusterConnector({ pool: member.pool, db, log, ...version, sentContent: (account, messageId) => clusterOutbox.sentMessage(account, messageId) });
        connector = clusterConnector;
      } else {
        const sqliteOutbox = new OutboxStore(db);
        outboxStore = sqliteOutbox;
        connector = new BaileysConnector({
          db,
          log,
          ...version,
          // A retry receipt is answered with the very message the outbox sent, also after a restart.
          sentContent: (account, messageId) => sqliteOutbox.sentMessage(account, messageId),
        });
      }
      // The gate is built before the runners so that it attaches to each one as it is made.
      let accountsRef: AccountSupervisor | undefined;
      let daemonRef: Daemon | undefined;
      const gate = new SendGate({
        store: outboxStore,
        bus,
        log,
        accounts: (id) => accountsRef?.find(id),
        phoneJidForLid: (account, jid) => connector.phoneJidForLid(account, jid),
        lidJidForPhone: (account, jid) => connector.lidJidForPhone(account, jid),
        settings: gateSettingsFromConfig(cfg),
        media: new MediaStore(join(cfg.stateDir, 'media'), mediaLimitsFromConfig(cfg)),
        ...(clusterConnector ? { storedIdentities: (account: string) => clusterConnector!.storedIdentities(account) } : {}),
      });
      // In a cluster the inbox and its consumers are shared too; only an account's owner stores its messages.
      const inbox = new Inbox({
        store: cluster ? new PgInboxStore(cluster.pool, { fenceOf: (a) => cluster!.fenceOf(a) }) : new InboxStore(db),
        bus,
        log,
        allowFrom: allowFromFromConfig(cfg),
        phoneJidForLid: (account, jid) => connector.phoneJidForLid(account, jid),
        lidJidForPhone: (account, jid) => connector.lidJidForPhone(account, jid),
      });
      bus.subscribe({ types: ['account.removed'] }, (e) => {
        if (e.account) inbox.detach(e.account);
      });
      // Inbound media files, downloaded on first request and kept within the configured limits
      // (read on every use, so a reload applies); the constructor applies them at start.
      const inboxMedia = new InboxMedia({
        store: inbox.store,
        // An expired file is asked of the sender's phone again, through the gate.
        reupload: (row, media) =>
          gate.requestMediaReupload({ account: row.account, chat: row.chat, message: { id: row.id, ...(row.chatType === 'group' ? { participant: row.from } : {}) }, media }),
        cache: new InboundMediaCache({
          dir: join(cfg.stateDir, 'media-in'),
          limits: () => {
            const m = (daemonRef ? daemonRef.#config : cfg).media;
            return { maxBytes: m?.inboundCacheMaxBytes, maxAgeMs: m?.inboundCacheMaxAgeMs };
          },
        }),
        download: (ref, o) => connector.downloadMedia(ref, o),
        log,
      });
      // How late the loop every socket shares runs: in status, with each close, and an alert past the threshold.
      let alertsRef: AlertEngine | undefined;
      let metricsRef: DaemonMetrics | undefined;
      const loop = new LoopHealth({
        onTick: ({ lastMinuteMaxMs, lastSecondMaxMs }) => {
          accountsRef?.observeLoopDelay(lastSecondMaxMs);
          const threshold = (daemonRef ? daemonRef.#config : cfg).eventLoop?.alertMs ?? DEFAULT_LOOP_ALERT_MS;
          alertsRef?.set('event_loop_stalled', undefined, lastMinuteMaxMs >= threshold, { maxMs: lastMinuteMaxMs, thresholdMs: threshold });
        },
      });
      loop.start();
      const accounts = new AccountSupervisor({
        loopDelaySince: (since) => loop.maxSince(since),
        observeProbeRtt: (_account, ms) => metricsRef?.observeProbeRtt(ms),
        db,
        connector,
        bus,
        log,
        config: cfg,
        onRunnerCreated: (id, runner) => {
          inbox.attach(id, runner);
          gate.attach(id, runner);
        },
        // A runtime account's allowTo and rules are in force before it connects.
        onPolicyChange: () => gate.updateSettings(gateSettingsFromConfig(daemonRef ? daemonRef.#config : cfg, accounts.runtimePolicies())),
        ...(cluster ? { owns: (id: string) => cluster!.fenceOf(id) !== null } : {}),
      });
      accountsRef = accounts;
      gate.updateSettings(gateSettingsFromConfig(cfg, accounts.runtimePolicies()));
      let monitorRef: AlertMonitor | undefined;
      const alerts = new AlertEngine({
        bus,
        log,
        sinks: buildSinks(cfg, gate, log),
        ...(cfg.alerts?.capPerHour ? { capPerHour: cfg.alerts.capPerHour } : {}),
        accountState: (account) => monitorRef?.stateOf(account),
        // In a cluster an account's alert is raised once for all daemons, and the hourly cap is theirs together.
        ...(cluster ? { shared: new PgAlertState(cluster.pool, { daemon: cluster.me.id, staleMs: 3 * ALERT_REFRESH_MS }), owns: (account: string) => cluster!.fenceOf(account) !== null } : {}),
      });
      alertsRef = alerts;
      const outboxChanges: OutboxChangesBackend = cluster ? new PgOutboxChanges(cluster.pool) : new OutboxChanges(db);
      const consumers = new ConsumerService({
        store: cluster ? new PgConsumerStore(cluster.pool, { keepUnlisted: true }) : new ConsumerStore(db),
        // Which daemon delivers a webhook consumer, and holds a stream consumer's reader.
        ...(cluster && cfg.store.type === 'postgres' ? { locks: new PgConsumerLocks({ url: cfg.store.url, pingMs: Math.max(500, Math.floor(cluster.ttlMs / 4)), idleLimitMs: cluster.ttlMs }) } : {}),
        inbox,
        log,
        settings: webhookSettingsFromConfig(cfg),
        onStuck: (c) => alerts.once('consumer_stuck', c.account, { ...c }),
      });
      const monitor = new AlertMonitor({ engine: alerts, bus, store: gate.store, log, digest: cfg.alerts?.digest, accounts: () => accounts.list() });
      monitorRef = monitor;
      const metrics = new DaemonMetrics({
        bus,
        accounts: () => accounts.list(),
        outboxByState: () => outboxStore.countsByState(),
        enqueuedAt: (id) => {
          const row = outboxStore.get(id);
          return row instanceof Promise ? row.then((r) => r?.createdAt ?? null) : (row?.createdAt ?? null);
        },
        consumers: () => consumers.list(),
        loop: () => loop.snapshot(),
      });
      metricsRef = metrics;
      started = { monitor, alerts, consumers, inbox };

      const daemonInfo = (): DaemonInfo => ({
        version: VERSION,
        pid: process.pid,
        node: process.version,
        startedAt: startedAt.toISOString(),
        uptimeMs: Date.now() - startedAt.getTime(),
        configPath: loaded.file,
        stateDir: cfg.stateDir,
        socket: socket.path,
        previousRunCrashed: crashed !== null,
        eventLoop: loop.snapshot(),
        connectAttempts: accounts.attempts(),
      });
      const clients = { list: cfg.clients as readonly ClientSpec[] };
      const routes = buildRoutes({
          daemonInfo,
          accounts,
          gate,
          inbox,
          inboxMedia,
          metrics,
          ...(gate.media ? { media: gate.media } : {}),
          stateDir: cfg.stateDir,
          consumers,
          outboxChanges,
          ...(cluster ? { cluster: () => cluster!.view() } : {}),
          alerts,
          bus,
          checkConfig: (raw) => {
            parseConfigText(JSON.stringify(raw), loaded.file, platform);
          },
        });
      const server = new ControlServer({ socketPath: socket.path, log, routes, clients: () => clients.list });
      const prep = await server.listen();
      started = { ...started!, servers: [server] };
      if (prep.removedStale) log.info({ socket: socket.path }, 'removed a stale socket file left by an earlier run');
      if (prep.looseDirMode !== undefined) {
        log.warn({ dir: socket.path, mode: prep.looseDirMode.toString(8) }, 'socket directory is open to other users; the socket itself is 0600');
      }
      // Bots and agents get their own socket: every request there must carry a client's token.
      let clientServer: ControlServer | undefined;
      if (cfg.clientSocket) {
        if (dirname(cfg.clientSocket) === dirname(socket.path)) {
          throw new Error(`clientSocket ${cfg.clientSocket} is in the operator socket's directory, which only the daemon's user may enter; put it in a directory of its own`);
        }
        clientServer = new ControlServer({ socketPath: cfg.clientSocket, log, routes, kind: 'client', clients: () => clients.list });
        await clientServer.listen();
        started = { ...started!, servers: [server, clientServer] };
        log.info({ clientSocket: cfg.clientSocket, clients: cfg.clients.map((c) => c.name) }, 'client socket ready');
      }
      // Prometheus over TCP, only when configured.
      let metricsListener: MetricsListener | undefined;
      if (cfg.metrics?.listen !== undefined) {
        const at = parseListen(cfg.metrics.listen)!;
        metricsListener = new MetricsListener(metrics, log);
        started = { ...started!, metricsListener };
        const bound = await metricsListener.listen(at.host, at.port);
        log.info({ metrics: `${bound.host}:${bound.port}` }, 'metrics listening (GET /metrics)');
      }

      const daemon = new Daemon({
        bus,
        socketPath: socket.path,
        log,
        db,
        lock,
        server,
        clientServer,
        clients,
        runId,
        accounts,
        gate,
        inbox,
        consumers,
        outboxChanges,
        alerts,
        monitor,
        config: cfg,
        configFile: loaded.file,
        platform,
        loop,
        metrics,
        metricsListener,
        cluster,
      });
      daemonRef = daemon;
      if (crashed) {
        log.warn({ previous: crashed }, 'the previous daemon run did not stop cleanly (crash, kill or power loss)');
        bus.publish({ type: 'daemon.crash_detected', previousPid: crashed.pid, previousStartedAt: new Date(crashed.startedAt).toISOString() });
        alerts.once('daemon_crashed', undefined, { previousPid: crashed.pid });
      }
      if (Number(process.versions.node.split('.')[0]) < 22) {
        log.warn({ node: process.version }, 'this Node.js line is past its end of life (no security fixes); move to Node.js 22 or newer (docs/node-versions.md)');
      }
      log.info(
        { version: VERSION, config: loaded.file, stateDir: cfg.stateDir, socket: socket.path, socketSource: describeSource(socket.source), accounts: cfg.accounts.length },
        'wa-supervisor daemon ready',
      );
      bus.publish({ type: 'daemon.started', version: VERSION, pid: process.pid });
      await gate.start();
      if (cluster) await inbox.startTail();
      await consumers.applyConfig(cfg.consumers, webhookSettingsFromConfig(cfg));
      daemon.#startRetention();
      accounts.startAll();
      if (cluster) await daemon.#joinCluster(cluster, clusterConnector!);
      return daemon;
    } catch (err) {
      // Undo whatever had started, or its timers would keep a process that failed to start alive.
      started?.monitor.stop();
      started?.alerts.stop();
      await started?.consumers.stop();
      started?.inbox.stopTail();
      for (const s of started?.servers ?? []) await s.close(0);
      await started?.metricsListener?.close();
      await cluster?.stop();
      if (db) closeStateDb(db);
      lock.release();
      throw err;
    }
  }

  /** Takes this daemon's share of the accounts: a runner runs while its lease is held (docs/cluster.md). */
  async #joinCluster(cluster: ClusterMember, connector: ClusterConnector): Promise<void> {
    const log = this.#log;
    // The outbox's counts are appended as deltas (a hot counts row would serialise every enqueue);
    // any daemon folds them every few seconds, one at a time, so reads stay short.
    const outbox = this.gate.store;
    if (outbox instanceof ClusterOutbox) {
      this.#fold = setInterval(() => void outbox.pg.foldCounts().catch((err: unknown) => log.warn({ err }, 'cluster: folding the outbox counts failed')), 5000);
      this.#fold.unref();
    }
    // The owner's view of each account's connection, beside its lease, for every daemon's status.
    this.bus.subscribe({ types: ['account.state'] }, (e) => {
      if (e.account && typeof e.state === 'string') cluster.noteState(e.account, e.state);
    });
    // One account's start, stop and hand-over run one after another: a hand-over (or a loss) that
    // comes while the start is still opening the auth state waits for it, and a start under a new
    // lease waits for the stop under the old one.
    const steps = new KeyedQueue();
    const inOrder = (account: string, step: () => Promise<void>): Promise<void> => steps.run(account, step);
    const current = (fence: Fence) => cluster.fenceOf(fence.lease.account) === fence;
    const startUnder = (fence: Fence, attempt: number): Promise<void> =>
      inOrder(fence.lease.account, async () => {
        const account = fence.lease.account;
        if (!current(fence)) return; // lost or handed over before it started
        await connector.open(fence, () => current(fence));
        if (!current(fence)) return;
        // Rows the previous owner had in flight are settled as after a restart.
        for (const r of await this.gate.store.releaseSending(account, Date.now())) this.gate.published(r, 'left in flight by the previous owner');
        if (!current(fence)) return;
        this.accounts.find(account)?.start();
        this.bus.publish({ type: 'cluster.acquired', account, daemon: cluster.me.id, epoch: fence.lease.epoch });
      }).catch((err: unknown) => {
        // The store failed while the account was being opened: tried again while the lease is held
        // (it is renewed meanwhile, so no other daemon takes the account and it would stay dark).
        log.error({ err, account: fence.lease.account, attempt }, 'cluster: starting an account under its lease failed; trying again');
        const retry = setTimeout(() => {
          if (current(fence)) void startUnder(fence, attempt + 1);
        }, Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5)));
        retry.unref();
      });
    await cluster.start({
      accounts: () => this.#config.accounts.map((a) => a.id),
      start: (fence) => startUnder(fence, 0),
      stopNow: (account, why) => {
        // At once (the fence is already gone); a later start of the account waits for it.
        const stopped = this.accounts.find(account)?.stop(why) ?? Promise.resolve();
        void inOrder(account, () => stopped).catch(() => undefined);
      },
      handOver: (account) =>
        inOrder(account, async () => {
          await this.accounts.find(account)?.stop('handed over to another daemon');
          for (const r of await this.gate.store.releaseSending(account, Date.now())) this.gate.published(r, 'handed over to another daemon');
          await this.gate.eventsApplied(account);
          this.bus.publish({ type: 'cluster.released', account, daemon: cluster.me.id });
        }),
      dropped: (account) => connector.drop(account),
      wake: (account) => this.gate.kick(account),
      inboxCommitted: () => this.inbox.poke(),
      storeState: (ok, error) => {
        this.alerts.set('store_unreachable', undefined, !ok, { ...(error ? { error } : {}) });
        this.bus.publish({ type: ok ? 'cluster.store_ok' : 'cluster.store_unreachable', daemon: cluster.me.id, ...(error ? { error } : {}) });
      },
      lost: (account, reason, fence) => {
        const timing = fence ? { fenceLateMs: fence.lateMs } : {};
        const overran = pastMargin(fence);
        if (overran) {
          // The one case the fence does not cover: another daemon may have had the lease before this socket closed.
          log.error({ account, reason, ...timing, fenceMarginMs: fence?.marginMs }, 'cluster: the fence ran later than its margin (the event loop stalled); the lease may have expired before the account stopped');
        } else log.warn({ account, reason, ...timing }, 'cluster: lease lost; the account is stopped here');
        this.alerts.once('lease_lost', account, { reason, ...timing, ...(fence ? { pastMargin: overran } : {}) });
        this.bus.publish({ type: 'cluster.lost', account, daemon: cluster.me.id, reason, ...timing });
      },
    });
  }

  /**
   * Re-reads the config file (SIGHUP). Policy, pacing, TTLs, alert sinks, keepalive, backoff and
   * log level apply at once without dropping a connection; config accounts added or removed start
   * or stop. A config that does not validate is refused: the old one stays, and an alert says why.
   */
  async reload(): Promise<{ ok: boolean; error?: string }> {
    let next: EffectiveConfig;
    try {
      next = parseConfigText(readFileSync(this.#configFile, 'utf8'), this.#configFile, this.#platform);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      this.#log.error({ error }, 'config reload refused; keeping the running config');
      this.alerts.once('config_reload_failed', undefined, { error });
      this.bus.publish({ type: 'daemon.reload_failed', error });
      return { ok: false, error };
    }
    const prev = this.#config;
    this.#clients.list = next.clients;
    // Streams opened under the old entries end; new requests are checked against the new ones.
    for (const server of [this.#server, this.#clientServer]) server?.endStaleClientStreams(next.clients);
    const needsRestart: string[] = (['stateDir', 'socket', 'clientSocket'] as const).filter((k) => prev[k] !== next[k]);
    if (String(prev.metrics?.listen ?? '') !== String(next.metrics?.listen ?? '')) needsRestart.push('metrics.listen');
    if (JSON.stringify(prev.store) !== JSON.stringify(next.store)) needsRestart.push('store');
    if (needsRestart.length) this.#log.warn({ keys: needsRestart }, 'these settings apply only after a restart');
    if (prev.alerts?.digest !== next.alerts?.digest) this.#log.warn('alerts.digest applies only after a restart');
    this.#log.level = next.log.level;
    // Order matters. Accounts leaving the config stop first: under the new policy they would have
    // no `allowTo` of their own while still connected. Accounts joining it start last, once the
    // new policy (with their `allowTo`) is in force.
    const removed = await this.accounts.removeUnlisted(next);
    this.gate.updateSettings(gateSettingsFromConfig(next, this.accounts.runtimePolicies()));
    this.gate.media?.setLimits(mediaLimitsFromConfig(next));
    this.inbox.setAllowFrom(allowFromFromConfig(next));
    const consumerChanges = await this.consumers.applyConfig(next.consumers, webhookSettingsFromConfig(next));
    this.alerts.setSinks(buildSinks(next, this.gate, this.#log), next.alerts?.capPerHour);
    const changes = { ...(await this.accounts.applyConfig(next)), removed, consumersAdded: consumerChanges.added, consumersRemoved: consumerChanges.removed };
    this.#config = next;
    if (this.cluster) void this.cluster.refresh().catch(() => undefined);
    this.#log.info({ ...changes, needsRestart }, 'config reloaded');
    this.bus.publish({ type: 'daemon.reloaded', ...changes });
    return { ok: true };
  }

  /**
   * Inbox retention, now and every hour: rows older than `inbox.retentionDays` go once every
   * consumer that should see them has acknowledged them.
   */
  #startRetention(): void {
    const run = async () => {
      const days = this.#config.inbox?.retentionDays ?? DEFAULT_INBOX_RETENTION_DAYS;
      try {
        const cutoff = Date.now() - days * 86_400_000;
        const deleted = await this.inbox.store.pruneAcknowledged(cutoff);
        const changes = await this.#outboxChanges.prune(cutoff);
        if (deleted || changes) this.#log.info({ deleted, outboxChanges: changes, retentionDays: days }, 'inbox retention pruned acknowledged messages and old outbox changes');
        // Media files no outbox row refers to any more (pruned rows, uploads never sent).
        const files = this.gate.media ? this.gate.media.collect(await this.gate.store.referencedMedia()) : 0;
        if (files) this.#log.info({ files }, 'removed media files no message refers to');
      } catch (err) {
        this.#log.error({ err }, 'inbox retention failed');
      }
    };
    void run();
    this.#retention = setInterval(() => void run(), RETENTION_EVERY_MS);
    this.#retention.unref();
  }

  /** Stops accepting requests, ends streams, closes the database with a checkpoint, removes the socket. Idempotent. */
  stop(reason = 'stop requested'): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log.info({ reason }, 'stopping');
      this.bus.publish({ type: 'daemon.stopping', reason });
      await Promise.all([this.#server.close(SHUTDOWN_GRACE_MS), this.#clientServer?.close(SHUTDOWN_GRACE_MS)]);
      this.#monitor.stop();
      this.alerts.stop();
      clearInterval(this.#retention);
      this.#loop.stop();
      await this.#metricsListener?.close();
      this.#metrics.stop();
      await this.consumers.stop();
      this.inbox.stopTail();
      clearInterval(this.#fold);
      // In a cluster every account is handed over first: socket closed, rows in flight put back,
      // lease released, so another daemon takes it within a renewal period.
      await this.cluster?.stop();
      // Rows in flight are marked for settlement at the next start before the sockets close.
      await this.gate.stop();
      await this.accounts.stopAll('daemon stopping');
      try {
        recordStop(this.#db, this.#runId);
      } finally {
        closeStateDb(this.#db);
        this.#lock.release();
      }
      this.#log.info('stopped');
    })();
    return this.#stopping;
  }
}
