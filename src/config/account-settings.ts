// Effective per-account settings: built-in defaults, overridden by the top-level config keys,
// overridden by the account's own keys. Also the cross-field checks zod cannot express per key.
import { DEFAULT_BACKOFF, type BackoffPolicy } from '../accounts/backoff.js';
import { DEFAULT_FLAP, type FlapPolicy } from '../accounts/flap-detector.js';
import { DEFAULT_KEEPALIVE, type KeepalivePolicy } from '../accounts/liveness.js';
import type { RunnerSettings } from '../accounts/runner.js';
import { normaliseRecipient } from '../outbox/recipient.js';
import type { ConfigProblem } from './errors.js';
import type { AccountConfig, ConfigFile } from './schema.js';

/** The connect watchdog's default: Baileys alone can wait for ever for `open`. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 20_000;
/** Default cap on connection attempts in flight across all accounts. */
export const DEFAULT_MAX_CONCURRENT_RECONNECTS = 8;
/** The keepalive interval must fit this many times into the idle window. */
export const KEEPALIVE_MARGIN = 3;

type Globals = Pick<ConfigFile, 'keepalive' | 'reconnect' | 'connectTimeoutMs' | 'flap'>;

/** The keepalive policy for an account. */
export function keepaliveFor(cfg: Globals, account?: Pick<AccountConfig, 'keepalive'>): KeepalivePolicy {
  return { ...DEFAULT_KEEPALIVE, ...defined(cfg.keepalive), ...defined(account?.keepalive) };
}

/** The reconnect backoff for an account. */
export function reconnectFor(cfg: Globals, account?: Pick<AccountConfig, 'reconnect'>): BackoffPolicy {
  const { maxConcurrent: _ignored, ...global } = cfg.reconnect ?? {};
  return { ...DEFAULT_BACKOFF, ...defined(global), ...defined(account?.reconnect) };
}

/** Flap detection settings. */
export function flapFor(cfg: Globals): FlapPolicy {
  return { ...DEFAULT_FLAP, ...defined(cfg.flap) };
}

/** Everything a runner needs for one account. */
export function runnerSettingsFor(cfg: Globals, account: Pick<AccountConfig, 'keepalive' | 'reconnect' | 'wsUrl'>): RunnerSettings {
  return {
    wsUrl: account.wsUrl,
    keepalive: keepaliveFor(cfg, account),
    reconnect: reconnectFor(cfg, account),
    connectTimeoutMs: cfg.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    flap: flapFor(cfg),
  };
}

/** Cross-field problems: keepalive comfortably inside the idle window, probe deadline inside the interval, backoff bounds in order. */
export function settingsProblems(cfg: ConfigFile): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const checkKeepalive = (k: KeepalivePolicy, at: string) => {
    if (k.intervalMs > 0 && k.intervalMs * KEEPALIVE_MARGIN > k.idleWindowMs) {
      problems.push({
        path: `${at}.intervalMs`,
        message: `keepalive every ${k.intervalMs} ms is not comfortably inside the ${k.idleWindowMs} ms idle window; use at most ${Math.floor(k.idleWindowMs / KEEPALIVE_MARGIN)} ms (a third of it)`,
      });
    }
    if (k.intervalMs > 0 && k.probeDeadlineMs >= k.intervalMs) {
      problems.push({ path: `${at}.probeDeadlineMs`, message: `the probe deadline (${k.probeDeadlineMs} ms) must be shorter than the keepalive interval (${k.intervalMs} ms)` });
    }
  };
  const checkBackoff = (b: BackoffPolicy, at: string) => {
    if (b.initialMs > b.maxMs) problems.push({ path: `${at}.initialMs`, message: `initialMs (${b.initialMs}) is larger than maxMs (${b.maxMs})` });
  };
  if (cfg.clients.length > 0 && !cfg.clientSocket) {
    problems.push({ path: 'clientSocket', message: 'required when clients are listed: the path of the socket clients connect to (outside the operator socket\'s 0700 directory, e.g. /run/wa-supervisor-clients/clients.sock)' });
  }
  // An operator chat may only reach numbers listed in `operators`, on an account that exists.
  const operatorJids = new Set(cfg.operators.map((o) => jidOf(o)));
  cfg.alerts?.sinks.forEach((sink, i) => {
    if (sink.type !== 'whatsapp') return;
    if (!cfg.accounts.some((a) => a.id === sink.account)) {
      problems.push({ path: `alerts.sinks[${i}].account`, message: `no account "${sink.account}" in accounts[] (an operator chat needs a configured account)` });
    }
    sink.to.forEach((to, j) => {
      if (!operatorJids.has(jidOf(to))) problems.push({ path: `alerts.sinks[${i}].to[${j}]`, message: `${to} is not listed in operators; alerts go only to operators` });
    });
  });
  checkKeepalive(keepaliveFor(cfg), 'keepalive');
  checkBackoff(reconnectFor(cfg), 'reconnect');
  cfg.accounts.forEach((a, i) => {
    if (a.keepalive) checkKeepalive(keepaliveFor(cfg, a), `accounts[${i}].keepalive`);
    if (a.reconnect) checkBackoff(reconnectFor(cfg, a), `accounts[${i}].reconnect`);
  });
  return problems;
}

function jidOf(raw: string): string {
  const r = normaliseRecipient(raw);
  return 'error' in r ? raw : r.jid;
}

function defined<T extends object>(o: T | undefined): Partial<T> {
  if (!o) return {};
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
