// Every alert the daemon can raise, declared as data in one place: code, severity, how long the
// condition must hold before anyone is told (so a 3-second blip is not an alert), which account
// states make it moot, and the words for raising and recovering.

/** Severity, for sinks that page on critical only. */
export type Severity = 'critical' | 'warning' | 'info';

/** What an alert's texts can use. */
export interface AlertContext {
  account?: string;
  [key: string]: unknown;
}

/** One kind of alert. */
export interface AlertKind {
  code: string;
  severity: Severity;
  /** The condition must hold this long before the alert fires; 0 = at once. */
  timeToVisibleMs: number;
  /** While the account is in one of these states, the alert is not raised (the state's own alert says more). */
  suppressedIn: readonly string[];
  /** One-shot kinds report an event (a crash, failed rows); they have no recovered notice. */
  oneShot: boolean;
  text: (c: AlertContext) => string;
  recovered: (c: AlertContext) => string;
}

const TERMINAL = ['needs_pairing', 'conflict', 'forbidden'] as const;

const kinds: AlertKind[] = [
  {
    code: 'needs_pairing',
    severity: 'critical',
    timeToVisibleMs: 0,
    suppressedIn: [],
    oneShot: false,
    text: (c) => `account ${c.account} was logged out (${c.reason ?? 'close 401/411'}); it waits for "wa-supervisor pair ${c.account}"`,
    recovered: (c) => `account ${c.account} is paired again`,
  },
  {
    code: 'conflict',
    severity: 'critical',
    timeToVisibleMs: 0,
    suppressedIn: [],
    oneShot: false,
    text: (c) => `account ${c.account} was replaced by another session (440); it will not fight it. Stop the other session, then "wa-supervisor reconnect ${c.account}"`,
    recovered: (c) => `account ${c.account} is connected again after the conflict`,
  },
  {
    code: 'forbidden',
    severity: 'critical',
    timeToVisibleMs: 0,
    suppressedIn: [],
    oneShot: false,
    text: (c) => `account ${c.account} was refused by WhatsApp (403); check the number, then "wa-supervisor reconnect ${c.account}"`,
    recovered: (c) => `account ${c.account} is connected again`,
  },
  {
    code: 'degraded',
    severity: 'warning',
    timeToVisibleMs: 0,
    suppressedIn: TERMINAL,
    oneShot: false,
    text: (c) =>
      `account ${c.account} closed ${c.closes} times within ${Math.round(Number(c.windowMs) / 60_000)} min` +
      (c.regularIntervalMs ? `, at a regular interval of ${Math.round(Number(c.regularIntervalMs) / 1000)} s (an idle timeout somewhere?)` : ''),
    recovered: (c) => `account ${c.account} is stable again`,
  },
  {
    code: 'reconnecting_long',
    severity: 'warning',
    timeToVisibleMs: 120_000,
    suppressedIn: TERMINAL,
    oneShot: false,
    text: (c) => `account ${c.account} has been reconnecting for over 2 minutes (last close: ${c.lastClose ?? 'unknown'})`,
    recovered: (c) => `account ${c.account} is connected again`,
  },
  {
    code: 'stale_repeating',
    severity: 'warning',
    timeToVisibleMs: 0,
    suppressedIn: TERMINAL,
    oneShot: false,
    text: (c) => `account ${c.account}: ${c.count} keepalive probes went unanswered within 10 min (the socket keeps going deaf)`,
    recovered: (c) => `account ${c.account}: keepalive probes are answered again`,
  },
  {
    code: 'event_loop_stalled',
    severity: 'warning',
    timeToVisibleMs: 0,
    suppressedIn: [],
    oneShot: false,
    text: (c) =>
      `the daemon's event loop stalled for ${c.maxMs} ms within the last minute (threshold ${c.thresholdMs} ms); every account's keepalive waits for it, so closes now may be the daemon's own doing`,
    recovered: () => "the daemon's event loop runs on time again",
  },
  {
    code: 'store_unreachable',
    severity: 'critical',
    timeToVisibleMs: 0,
    suppressedIn: [],
    oneShot: false,
    text: (c) =>
      `the shared PostgreSQL store cannot be reached (${c.error ?? 'no answer'}); this daemon cannot renew its account leases and closes their sockets before the leases can expire (self-fencing), so other daemons take them over`,
    recovered: () => 'the shared PostgreSQL store answers again; this daemon takes its share of the accounts back',
  },
  {
    code: 'lease_lost',
    severity: 'warning',
    timeToVisibleMs: 0,
    suppressedIn: [],
    oneShot: true,
    text: (c) =>
      `account ${c.account}: this daemon lost its lease (${c.reason}) and closed the socket; another daemon may own it now` +
      (c.pastMargin ? `. Its fence ran ${String(c.fenceLateMs)} ms late, past the margin (the event loop stalled): the lease may have expired before the socket closed` : ''),
    recovered: () => '',
  },
  {
    code: 'retries_repeating',
    severity: 'warning',
    timeToVisibleMs: 0,
    suppressedIn: TERMINAL,
    oneShot: false,
    text: (c) =>
      `account ${c.account}: recipients asked for ${c.count} of its messages again within 10 min (retry receipts: they could not decrypt them); its encryption sessions may be broken, e.g. by another client using the same login`,
    recovered: (c) => `account ${c.account}: recipients decrypt its messages again`,
  },
  {
    code: 'queue_stuck',
    severity: 'warning',
    timeToVisibleMs: 60_000,
    suppressedIn: TERMINAL,
    oneShot: false,
    text: (c) => `account ${c.account} is connected but its oldest queued message has waited ${Math.round(Number(c.ageMs) / 60_000)} min`,
    recovered: (c) => `account ${c.account}: the queue moves again`,
  },
  {
    code: 'unknown_unsettled',
    severity: 'warning',
    timeToVisibleMs: 60_000,
    suppressedIn: TERMINAL,
    oneShot: false,
    text: (c) => `account ${c.account}: ${c.count} message(s) may or may not have been sent and are still unsettled after 10 min`,
    recovered: (c) => `account ${c.account}: every message is settled`,
  },
  {
    code: 'messages_failed',
    severity: 'warning',
    timeToVisibleMs: 0,
    suppressedIn: [],
    oneShot: true,
    text: (c) => `account ${c.account}: message ${c.id} ${c.state} (${c.reason ?? 'no reason given'})`,
    recovered: () => '',
  },
  {
    code: 'daemon_crashed',
    severity: 'warning',
    timeToVisibleMs: 0,
    suppressedIn: [],
    oneShot: true,
    text: (c) => `the previous daemon run (pid ${c.previousPid}) ended without a clean stop; messages it had in flight are being settled`,
    recovered: () => '',
  },
  {
    code: 'consumer_stuck',
    severity: 'warning',
    timeToVisibleMs: 0,
    suppressedIn: [],
    oneShot: true,
    text: (c) =>
      `inbox consumer ${c.consumer} could not take message ${c.id} (cursor ${c.cursor}) for ${Math.round(Number(c.ageMs) / 60_000)} min (${c.error}); ` +
      `it is in the dead-letter list ("wa-supervisor consumers list") and the consumer moved on`,
    recovered: () => '',
  },
  {
    code: 'config_reload_failed',
    severity: 'warning',
    timeToVisibleMs: 0,
    suppressedIn: [],
    oneShot: true,
    text: (c) => `the new config was refused and the old one kept: ${c.error}`,
    recovered: () => '',
  },
];

/** Alert kinds by code. */
export const ALERT_KINDS: ReadonlyMap<string, AlertKind> = new Map(kinds.map((k) => [k.code, k]));

/** The kind for a code; throws on a code nobody declared (a programming error). */
export function alertKind(code: string): AlertKind {
  const k = ALERT_KINDS.get(code);
  if (!k) throw new Error(`undeclared alert code ${code}`);
  return k;
}
