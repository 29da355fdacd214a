// Types for postgres-server.mjs (a throwaway PostgreSQL server for tests, the demo and benchmarks).

export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust authentication). */
  url: string;
  port: number;
  dataDir: string;
  pid: number;
  /** Fast shutdown, then the data directory is removed. */
  stop(): Promise<void>;
}

/** Starts a server on a free loopback port; `fast` (default) turns fsync off. */
export declare function startPostgres(opts?: { fast?: boolean }): Promise<PostgresServer>;
