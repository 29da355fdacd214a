// The set of account runners: accounts from the config plus accounts added at runtime (kept in
// the state database so they survive a restart). Status is read from the runners themselves.
import { AdaptiveCap, loopDelayTargetMs } from './adaptive-cap.js';
import type { AccountJson } from '../control/account-json.js';
import { ACCOUNT_ID_PATTERN, type AccountConfig, type RuntimeAccountPolicy } from '../config/schema.js';
import type { RuntimeAccountPolicyOf } from '../config/gate-settings.js';
import { runnerSettingsFor } from '../config/account-settings.js';
import { isWsUrl, WS_URL_EXPECTED } from '../config/ws-url.js';
import type { EffectiveConfig } from '../config/load.js';
import { HttpError } from '../control/http-error.js';
import type { EventBus } from '../events/bus.js';
import type { Log } from '../log.js';
import type { StateDb } from '../store/db.js';
import { writeTx } from '../store/db.js';
import type { WaConnector } from '../wa/types.js';
import { Semaphore } from '../semaphore.js';
import { AccountRunner, type AccountStatus, type PairRequest } from './runner.js';
import { DEFAULT_MAX_CONCURRENT_RECONNECTS } from '../config/account-settings.js';

/** Where an account was defined. */
export type AccountOrigin = 'config' | 'runtime';

/** Owns every runner. */
export class AccountSupervisor {
  readonly #runners = new Map<string, { runner: AccountRunner; origin: AccountOrigin }>();
  readonly #db: StateDb;
  readonly #loopDelaySince: ((since: number) => number) | undefined;
  readonly #observeProbeRtt: ((account: string, ms: number) => void) | undefined;
  readonly #connector: WaConnector;
  readonly #bus: EventBus;
  readonly #log: Log;
  readonly #gate: Semaphore;
  readonly #cap: AdaptiveCap;
  #config: EffectiveConfig;
  readonly #onCreate: (id: string, runner: AccountRunner) => void;
  readonly #onPolicyChange: () => void;
  readonly #owns: ((id: string) => boolean) | undefined;

  constructor(opts: {
    db: StateDb;
    connector: WaConnector;
    bus: EventBus;
    log: Log;
    config: EffectiveConfig;
    /** Called for every runner made (the send gate attaches to it). */
    onRunnerCreated?: (id: string, runner: AccountRunner) => void;
    /** Called when a runtime account's policy comes or goes, before the account connects or after it stopped. */
    onPolicyChange?: () => void;
    /** The largest event-loop delay since a moment, recorded with each close. */
    loopDelaySince?: (since: number) => number;
    /** Each answered keepalive probe's round trip (metrics). */
    observeProbeRtt?: (account: string, ms: number) => void;
    /**
     * In a cluster: whether this daemon holds the account's lease. Runners then start only when
     * their lease is granted (the cluster starts them), commands that connect are refused for
     * accounts owned elsewhere, and accounts come from the config file only.
     */
    owns?: (id: string) => boolean;
  }) {
    this.#owns = opts.owns;
    this.#loopDelaySince = opts.loopDelaySince;
    this.#observeProbeRtt = opts.observeProbeRtt;
    this.#onCreate = opts.onRunnerCreated ?? (() => {});
    this.#onPolicyChange = opts.onPolicyChange ?? (() => {});
    this.#db = opts.db;
    this.#connector = opts.connector;
    this.#bus = opts.bus;
    this.#log = opts.log;
    this.#config = opts.config;
    const gate = new Semaphore(opts.config.reconnect?.maxConcurrent ?? DEFAULT_MAX_CONCURRENT_RECONNECTS);
    this.#gate = gate;
    this.#cap = new AdaptiveCap({ ceiling: opts.config.reconnect?.maxConcurrent ?? DEFAULT_MAX_CONCURRENT_RECONNECTS, apply: (n) => gate.setLimit(n) });
    for (const a of opts.config.accounts) this.#create(a, 'config');
    const runtime = this.#db.prepare('SELECT id, ws_url AS wsUrl FROM runtime_accounts ORDER BY added_at').all() as Array<{ id: string; wsUrl: string | null }>;
    if (opts.owns && runtime.length) {
      this.#log.warn({ accounts: runtime.map((r) => r.id) }, 'accounts added at runtime are not run in a cluster; list them in the config file');
      runtime.length = 0;
    }
    for (const row of runtime) {
      if (this.#runners.has(row.id)) {
        this.#log.warn({ account: row.id }, 'account added at runtime is now also in the config; the config entry wins');
        continue;
      }
      this.#create({ id: row.id, ...(row.wsUrl ? { wsUrl: row.wsUrl } : {}) }, 'runtime');
    }
  }

  /** True in a cluster (runners start with their lease). */
  get clustered(): boolean {
    return this.#owns !== undefined;
  }

  /** Starts every runner (not in a cluster, where a runner starts with its lease). */
  startAll(): void {
    if (this.#owns) return;
    for (const { runner } of this.#runners.values()) runner.start();
  }

  /** Stops every runner (daemon shutdown). */
  async stopAll(reason: string): Promise<void> {
    await Promise.all([...this.#runners.values()].map(({ runner }) => runner.stop(reason)));
  }

  /** Every account's summary as JSON, kept by its runner between changes (control/account-json.ts). */
  listJson(): AccountJson[] {
    return [...this.#runners.values()].map(({ runner, origin }) => ({ id: runner.id, state: runner.state, origin, json: runner.statusJson() }));
  }

  /** Every account's status, config accounts first. */
  list(): Array<AccountStatus & { origin: AccountOrigin }> {
    return [...this.#runners.values()].map(({ runner, origin }) => Object.assign(runner.status(), { origin }));
  }

  /** One second's largest event-loop delay: the cap on attempts in flight follows it (adaptive-cap.ts). */
  observeLoopDelay(lastSecondMaxMs: number): void {
    this.#cap.observe(lastSecondMaxMs, this.loopDelayTargetMs());
  }

  /** What the adaptive cap holds the loop's delay to: a quarter of the shortest probe deadline (adaptive-cap.ts). */
  loopDelayTargetMs(): number {
    let shortest: number | null = null;
    for (const { runner } of this.#runners.values()) {
      const k = runner.settings.keepalive;
      if (k.intervalMs > 0 && (shortest === null || k.probeDeadlineMs < shortest)) shortest = k.probeDeadlineMs;
    }
    return loopDelayTargetMs(shortest);
  }

  /** Connection attempts: the cap now, its ceiling, in flight and waiting, and the loop delay the cap holds to. */
  attempts(): { cap: number; ceiling: number; inFlight: number; waiting: number; loopDelayTargetMs: number } {
    return { cap: this.#cap.cap, ceiling: this.#cap.ceiling, inFlight: this.#gate.inUse, waiting: this.#gate.waiting, loopDelayTargetMs: this.loopDelayTargetMs() };
  }

  /** One runner, or undefined. */
  find(id: string): AccountRunner | undefined {
    return this.#runners.get(id)?.runner;
  }

  /** One runner, or a 404 naming the account. */
  get(id: string): AccountRunner {
    const entry = this.#runners.get(id);
    if (!entry) throw new HttpError(404, 'not_found', `no account "${id}" (see GET /v1/accounts)`);
    return entry.runner;
  }

  /** Status of one account. */
  status(id: string): AccountStatus & { origin: AccountOrigin } {
    const entry = this.#runners.get(id);
    if (!entry) throw new HttpError(404, 'not_found', `no account "${id}" (see GET /v1/accounts)`);
    return { ...entry.runner.status(), origin: entry.origin };
  }

  /** The policies operators gave the accounts added at runtime (allowTo and rules). */
  runtimePolicies(): RuntimeAccountPolicyOf[] {
    const rows = this.#db.prepare('SELECT id, policy FROM runtime_accounts WHERE policy IS NOT NULL ORDER BY added_at').all() as Array<{ id: string; policy: string }>;
    return rows.map((r) => ({ id: r.id, policy: JSON.parse(r.policy) as RuntimeAccountPolicy }));
  }

  /**
   * Adds an account at runtime (persisted) and starts it; it waits for pairing when new. Its
   * policy is in force before it connects. Creds left by a config account of the same id (removed
   * from the config with its `allowTo`) are not taken over: that is a 409 unless `fresh` archives
   * them, so the account pairs anew.
   */
  add(id: string, wsUrl: string | undefined, opts: { policy?: RuntimeAccountPolicy; fresh?: boolean } = {}): AccountStatus & { origin: AccountOrigin } {
    if (!ACCOUNT_ID_PATTERN.test(id)) {
      throw new HttpError(400, 'bad_request', 'id: expected 1-64 characters of letters, digits, "_", "." or "-", starting with a letter or digit');
    }
    if (wsUrl !== undefined && !isWsUrl(wsUrl)) throw new HttpError(400, 'bad_request', `wsUrl: ${WS_URL_EXPECTED}, got ${JSON.stringify(wsUrl)}`);
    if (this.#owns) throw new HttpError(409, 'conflict', 'this daemon is one of a cluster (store.type "postgres"): accounts come from the config file every daemon reads; add it there and reload each daemon');
    if (this.#runners.has(id)) throw new HttpError(409, 'conflict', `account "${id}" already exists`);
    if (this.#connector.isRegistered(id)) {
      if (!opts.fresh) {
        throw new HttpError(
          409,
          'conflict',
          `account "${id}" still has the creds of an account of that id that was removed from the config (with its allowTo and rules); put it back in the config, or add it with "fresh": true to archive those creds and pair anew`,
        );
      }
      this.#connector.archiveCreds(id, 'added again at runtime with fresh');
    }
    writeTx(this.#db, () => {
      this.#db
        .prepare('INSERT INTO runtime_accounts (id, ws_url, added_at, policy) VALUES (?, ?, ?, ?)')
        .run(id, wsUrl ?? null, Date.now(), opts.policy ? JSON.stringify(opts.policy) : null);
    });
    if (opts.policy) this.#onPolicyChange();
    const runner = this.#create({ id, ...(wsUrl ? { wsUrl } : {}) }, 'runtime');
    this.#bus.publish({ type: 'account.added', account: id });
    runner.start();
    return this.status(id);
  }

  /** Replaces a runtime account's policy (allowTo and rules); it applies to the next send decision. */
  setPolicy(id: string, policy: RuntimeAccountPolicy): RuntimeAccountPolicy {
    const entry = this.#runners.get(id);
    if (!entry) throw new HttpError(404, 'not_found', `no account "${id}"`);
    if (entry.origin === 'config') throw new HttpError(409, 'conflict', `account "${id}" is defined in the config file; its allowTo and rules are set there`);
    writeTx(this.#db, () => {
      this.#db.prepare('UPDATE runtime_accounts SET policy = ? WHERE id = ?').run(JSON.stringify(policy), id);
    });
    this.#onPolicyChange();
    return policy;
  }

  /** Removes a runtime account: stops it and forgets it (its creds stay in the database, archived). */
  async remove(id: string): Promise<void> {
    const entry = this.#runners.get(id);
    if (!entry) throw new HttpError(404, 'not_found', `no account "${id}"`);
    if (entry.origin === 'config') {
      throw new HttpError(409, 'conflict', `account "${id}" is defined in the config file; remove it there and reload`);
    }
    await entry.runner.stop('account removed');
    this.#connector.archiveCreds(id, 'account removed');
    writeTx(this.#db, () => {
      this.#db.prepare('DELETE FROM runtime_accounts WHERE id = ?').run(id);
    });
    this.#runners.delete(id);
    this.#onPolicyChange();
    this.#bus.publish({ type: 'account.removed', account: id });
  }

  /**
   * Stops and forgets the config accounts a reloaded config no longer lists (their creds stay).
   * A reload calls this before the new send policy takes over: under that policy a removed account
   * has no `allowTo` of its own, so it must not be running any more. Returns their ids.
   */
  async removeUnlisted(config: EffectiveConfig): Promise<string[]> {
    const wanted = new Set(config.accounts.map((a) => a.id));
    // Runtime accounts live in the database, not the file.
    const gone = [...this.#runners].filter(([id, entry]) => !wanted.has(id) && entry.origin === 'config');
    // Forgotten first, so nothing (the send gate included) finds them while they stop.
    for (const [id] of gone) this.#runners.delete(id);
    await Promise.all(gone.map(([, entry]) => entry.runner.stop('removed from the config')));
    for (const [id] of gone) this.#bus.publish({ type: 'account.removed', account: id });
    return gone.map(([id]) => id);
  }

  /**
   * Applies a reloaded config: config accounts no longer listed stop and are removed (their creds
   * stay; see removeUnlisted), settings of existing accounts change in place (no reconnect unless
   * the wsUrl changed), new config accounts start. Returns what changed, for the log.
   */
  async applyConfig(config: EffectiveConfig): Promise<{ added: string[]; removed: string[]; reconnected: string[] }> {
    const removed = await this.removeUnlisted(config);
    this.#config = config;
    this.#cap.setCeiling(config.reconnect?.maxConcurrent ?? DEFAULT_MAX_CONCURRENT_RECONNECTS);
    const added: string[] = [];
    const reconnected: string[] = [];
    const wanted = new Map(config.accounts.map((a) => [a.id, a]));
    for (const [id, entry] of [...this.#runners]) {
      const a = wanted.get(id);
      if (!a) continue;
      const next = runnerSettingsFor(config, a);
      const urlChanged = next.wsUrl !== entry.runner.settings.wsUrl;
      entry.runner.updateSettings(next);
      entry.origin = 'config';
      if (urlChanged && entry.runner.state !== 'needs_pairing' && (this.#owns?.(id) ?? true)) {
        await entry.runner.reconnect('wsUrl changed in the config');
        reconnected.push(id);
      }
    }
    for (const a of config.accounts) {
      if (this.#runners.has(a.id)) continue;
      const runner = this.#create(a, 'config');
      if (!this.#owns) runner.start(); // in a cluster it starts when its lease is granted
      this.#bus.publish({ type: 'account.added', account: a.id });
      added.push(a.id);
    }
    return { added, removed, reconnected };
  }

  /** Pairs an account; events go to req.onEvent until `paired` or `error`. */
  async pair(id: string, req: PairRequest): Promise<void> {
    const runner = this.#owned(id);
    try {
      await runner.pair(req);
    } catch (err) {
      throw new HttpError(409, 'conflict', (err as Error).message);
    }
  }

  /** Ends a pairing in progress. */
  async cancelPairing(id: string): Promise<void> {
    await this.get(id).cancelPairing('pairing request went away');
  }

  /** Operator command: reconnect now (also out of conflict, forbidden). */
  async reconnect(id: string): Promise<AccountStatus & { origin: AccountOrigin }> {
    const runner = this.#owned(id);
    await runner.reconnect();
    return this.status(id);
  }

  /** Operator command: log out on the server and archive the creds. */
  async logout(id: string): Promise<AccountStatus & { origin: AccountOrigin }> {
    await this.#owned(id).logout();
    return this.status(id);
  }

  /** The runner of an account this daemon may connect: in a cluster, one whose lease it holds. */
  #owned(id: string): AccountRunner {
    const runner = this.get(id);
    if (this.#owns && !this.#owns(id)) {
      throw new HttpError(409, 'conflict', `account "${id}" is not owned by this daemon (see the cluster section of status for its owner); send this command to the daemon that owns it`);
    }
    return runner;
  }

  #create(account: AccountConfig, origin: AccountOrigin): AccountRunner {
    const runner = new AccountRunner(account.id, runnerSettingsFor(this.#config, account), {
      connector: this.#connector,
      bus: this.#bus,
      gate: this.#gate,
      log: this.#log,
      ...(this.#loopDelaySince ? { loopDelaySince: this.#loopDelaySince } : {}),
      ...(this.#observeProbeRtt ? { observeProbeRtt: this.#observeProbeRtt } : {}),
      // Accounts' probes must not stay in step (liveness.ts PROBE_SPREAD).
      probeSpread: Math.random,
    });
    this.#runners.set(account.id, { runner, origin });
    this.#onCreate(account.id, runner);
    return runner;
  }
}
