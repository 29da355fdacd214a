// What the MCP server needs of the daemon: one JSON request at a time. ControlClient is one;
// unit tests pass a fake. Every call runs under a deadline, so a daemon that stops answering
// turns into a tool error instead of a model waiting for ever.

/** A JSON request to the control API; error statuses reject (ApiError, as ControlClient's do). */
export interface DaemonPort {
  request<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
}

/** A call that got no answer in time. */
export class CallTimeoutError extends Error {
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
    this.name = 'CallTimeoutError';
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The port with a deadline on each call. The request itself is not aborted (ControlClient's
 * request takes no signal); its late answer is dropped.
 */
export function withDeadline(port: DaemonPort, timeoutMs: number): DaemonPort {
  return {
    request<T>(method: string, path: string, body?: unknown) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new CallTimeoutError(timeoutMs)), timeoutMs);
      });
      return Promise.race([port.request<T>(method, path, body), deadline]).finally(() => clearTimeout(timer));
    },
  };
}
