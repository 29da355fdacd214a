// How a failed call reads to a model: one line that starts with what happened (denied:,
// forbidden:, invalid:, not found:, unreachable:, timeout:, ...) followed by the daemon's own
// words. Never a stack, never a socket path: DaemonUnreachableError's message names the path and
// gives shell advice meant for a person at a terminal, so it is not passed on.
import { ApiError, DaemonUnreachableError } from '../control/client.js';
import { CallTimeoutError } from './daemon-port.js';

const STATUS_WORDS: Record<number, string> = {
  400: 'invalid',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not found',
  405: 'invalid',
  409: 'conflict',
  413: 'too large',
};

/** The text of a tool error for a call that threw `err`; `internal` is true when it is not one the daemon or the socket explains. */
export function failureText(err: unknown): { text: string; internal: boolean } {
  if (err instanceof CallTimeoutError) {
    return { text: `timeout: the wa-supervisor daemon did not answer within ${seconds(err.timeoutMs)} (the request may still take effect)`, internal: false };
  }
  if (err instanceof DaemonUnreachableError) {
    return { text: 'unreachable: the wa-supervisor daemon is not answering on its socket', internal: false };
  }
  if (err instanceof ApiError) {
    if (err.code === 'bad_response') return { text: 'failed: the wa-supervisor daemon sent an answer that could not be read', internal: false };
    const word = STATUS_WORDS[err.status] ?? (err.status >= 500 ? 'daemon error' : `failed (${err.status})`);
    return { text: `${word}: ${err.message}`, internal: false };
  }
  // A connection that broke mid-request (reset, hang-up): the daemon went away while answering.
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
    return { text: `unreachable: the connection to the wa-supervisor daemon broke before it answered (${code})`, internal: false };
  }
  return { text: 'failed: an internal error in the MCP server (its stderr has the details)', internal: true };
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
