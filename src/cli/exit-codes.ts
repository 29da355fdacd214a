/** Process exit codes (sysexits.h where one fits). Documented in README; scripts may rely on them. */
export const EXIT = {
  OK: 0,
  /** A request failed (the daemon said no, or an operation failed). */
  FAILURE: 1,
  /** Bad command line (unknown command or flag, missing argument). */
  USAGE: 64,
  /** The daemon is not reachable on its socket. */
  UNAVAILABLE: 69,
  /** The daemon refused the caller (401 no or unknown token, 403 the role or account is not its). */
  NOPERM: 77,
  /** The config file is missing or invalid. */
  CONFIG: 78,
} as const;
