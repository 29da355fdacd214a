// Shapes that cross the control socket, shared by the daemon's routes and the CLI client.

/** The daemon half of `GET /v1/status` and `status --json`. */
export interface DaemonInfo {
  version: string;
  pid: number;
  node: string;
  startedAt: string;
  uptimeMs: number;
  /** The config file the daemon loaded. */
  configPath: string;
  stateDir: string;
  socket: string;
  /** Set when the previous daemon run on this state directory ended without a clean stop. */
  previousRunCrashed: boolean;
  /**
   * How late the daemon's event loop ran (every socket and probe shares it): p99 and max over
   * the last minute (p99 as the highest one-second p99) and since start, in ms.
   */
  eventLoop?: { lastTenSeconds: { p99Ms: number; maxMs: number }; lastMinute: { p99Ms: number; maxMs: number }; sinceStart: { p99Ms: number; maxMs: number } };
  /**
   * Connection attempts: the cap on those in flight (halved each second the loop ran over 100 ms
   * late, grown by half when it ran on time, up to `reconnect.maxConcurrent`), in flight, waiting.
   */
  connectAttempts?: { cap: number; ceiling: number; inFlight: number; waiting: number; loopDelayTargetMs: number };
}

/** Account states (the per-account state machine; see docs/). */
export type AccountState =
  | 'stopped'
  | 'connecting'
  | 'pairing'
  | 'open'
  | 'reconnecting'
  | 'needs_pairing'
  | 'conflict'
  | 'forbidden';

/** Why a connection ended. */
export interface CloseRecord {
  code: number | null;
  name: string;
  message: string;
  at: string;
  /** How long before the close the last frame from the server arrived (null: none arrived). */
  sinceLastFrameMs?: number | null;
  /**
   * The largest delay of the daemon's event loop in the minute before the close: a large one
   * means the daemon itself stalled, whatever the close code says.
   */
  loopDelayMaxMs?: number | null;
}

/** One account as `GET /v1/accounts[/ID]` and `status` show it. */
export interface AccountSummary {
  id: string;
  state: AccountState;
  /** When the account entered its current state. */
  since: string;
  /** `config` (from the config file) or `runtime` (added with `accounts add`). */
  origin?: 'config' | 'runtime';
  wsUrl?: string;
  /** Our own JID once paired. */
  jid: string | null;
  name: string | null;
  connectedSince: string | null;
  lastClose: CloseRecord | null;
  reconnect: { failures: number; nextRetryAt: string | null };
  keepalive: {
    intervalMs: number;
    /** The last keepalive probe sent (probes only). */
    lastSentAt: string | null;
    /** The last stanza of any kind the account sent: probe, message, receipt, Baileys' own iqs. */
    lastStanzaSentAt: string | null;
    lastReceivedAt: string | null;
    largestSilentGapMs: number;
    probesSent: number;
    probesMissed: number;
    lastProbeRttMs: number | null;
  } | null;
  lastInboundAt: string | null;
  /**
   * Retry receipts: how often recipients could not decrypt a message of this account and asked
   * for it again (since the daemon started), and when last. Many of them is a health signal.
   */
  retryReceipts: { received: number; lastAt: string | null };
  /** When the current creds were first saved (pairing time). */
  authSince: string | null;
  /** Set while the account is flapping. */
  degraded: {
    closes: number;
    windowMs: number;
    regularIntervalMs: number | null;
    codes: Array<number | string>;
    since: string;
  } | null;
  /** Closes since the daemon started, by code (or reason name when there is no code). */
  closesByCode: Record<string, number>;
  /** Outbox rows of this account waiting (queued), in flight (sending), unsettled (unknown) or held. */
  queue?: { queued: number; sending: number; unknown: number; held: number };
  /** Inbound messages stored for this account: readable, undecryptable ("waiting for this message"), and refused by allowFrom. */
  inbox?: { messages: number; undecryptable: number; ignored: number };
  /**
   * In a cluster: the daemon that holds the account's lease (null: none now), since when, until
   * when, at which epoch, and the state its owner last recorded. `state` above is this daemon's
   * own view: `stopped` for an account another daemon owns.
   */
  owner?: { daemon: string | null; since: string | null; expiresAt: string | null; epoch: number; state: string | null };
}

/** `cluster` in `GET /v1/status` (store.type "postgres"). */
export interface ClusterView {
  /** This daemon's id. */
  daemon: string;
  ttlMs: number;
  /** False while this daemon cannot reach the shared store (its accounts are fenced). */
  storeOk: boolean;
  /** Set when the store did not answer this request: `daemons` and `leases` are then empty. */
  error?: string;
  daemons: Array<{ id: string; host: string; pid: number; socket: string | null; startedAt: string; seenAt: string; stopping: boolean; live: boolean; accounts: number }>;
  leases: Array<{ account: string; owner: string | null; epoch: number; since: string | null; expiresAt: string | null; live: boolean; state: string | null }>;
}

/** The inbox in `GET /v1/status`. */
export interface InboxSummary {
  messages: number;
  undecryptable: number;
  ignored: number;
  /** The highest cursor given so far. */
  lastCursor: string;
}

/** The outbox in `GET /v1/status`. */
export interface OutboxSummary {
  byState: Record<string, number>;
  /** Enqueue transactions since start, and the rows they carried (group commit). */
  commits: number;
  rowsCommitted: number;
  /** Set when the counts could not be read (a shared store that does not answer); `byState` is then empty. */
  error?: string;
}

/** `GET /v1/status`. */
export interface StatusResponse {
  daemon: DaemonInfo;
  outbox?: OutboxSummary;
  inbox?: InboxSummary;
  summary: { accounts: number; byState: Partial<Record<AccountState, number>> };
  /** Only in a cluster. */
  cluster?: ClusterView;
  accounts: AccountSummary[];
}

/** `GET /v1/accounts`. */
export interface AccountsResponse {
  accounts: AccountSummary[];
}

/** `POST /v1/config/check`. */
export interface ConfigCheckResponse {
  ok: boolean;
  problems: Array<{ path: string; message: string }>;
}
