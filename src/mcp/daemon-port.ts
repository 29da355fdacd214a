// What the MCP server needs of the daemon: one JSON request at a time. A ControlClient is one
// (controlPort); unit tests pass a fake. Every call runs under a deadline, so a daemon that stops
// answering turns into a tool error instead of a model waiting for ever.
import type { ControlClient } from '../control/client.js';

/**
 * A JSON request to the control API; error statuses reject (ApiError, as ControlClient's do).
 * `signal` aborts the request: its connection is closed.
 */
export interface DaemonPort {
  request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<{ status: number; body: T }>;
}

/** A ControlClient as the port. */
export function controlPort(client: ControlClient): DaemonPort {
  return { request: (method, path, body, signal) => client.request(method, path, body, {}, signal) };
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
 * The port with a deadline on each call: at the deadline the call fails with CallTimeoutError and
 * its request is aborted, so a daemon that never answers is not left holding the connection.
 */
export function withDeadline(port: DaemonPort, timeoutMs: number): DaemonPort {
  return {
    request<T>(method: string, path: string, body?: unknown) {
      const abort = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(new CallTimeoutError(timeoutMs));
          abort.abort(new CallTimeoutError(timeoutMs));
        }, timeoutMs);
      });
      const answer = port.request<T>(method, path, body, abort.signal);
      answer.catch(() => undefined); // after the deadline, its abort is nobody's error
      return Promise.race([answer, deadline]).finally(() => clearTimeout(timer));
    },
  };
}
