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

/** One account as `GET /v1/accounts` and `status` show it. */
export interface AccountSummary {
  id: string;
  state: AccountState;
  /** When the account entered its current state. */
  since: string;
  wsUrl?: string;
}

/** `GET /v1/status`. */
export interface StatusResponse {
  daemon: DaemonInfo;
  summary: { accounts: number; byState: Partial<Record<AccountState, number>> };
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
