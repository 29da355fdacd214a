// What a typed-client call can fail with, split by who failed: the daemon answered and refused
// (validation, permission, policy, not found, conflict, or its own failure), the daemon could not
// be reached, or the call took too long. Catch the class, or switch on `code`.
import type { Message } from './types.js';

/** Every error the client throws. */
export class WaSupervisorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The daemon answered with an error: `status` and `code` are its, `message` its explanation. */
export class DaemonRefusedError extends WaSupervisorError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The request was malformed (400, 413): a field, a parameter or the body. */
export class ValidationError extends DaemonRefusedError {}

/** The token is unknown (401) or the client may not do this (403): another account, an operator's route. */
export class ForbiddenError extends DaemonRefusedError {}

/** No such message, consumer or account (404; another account's rows look the same). */
export class NotFoundError extends DaemonRefusedError {}

/** A conflict (409): a consumer already has a reader, a message id in several chats. */
export class ConflictError extends DaemonRefusedError {}

/** The send policy refused a message: it is stored as `denied` and never sent. */
export class PolicyDeniedError extends DaemonRefusedError {
  constructor(readonly row: Pick<Message, 'id' | 'messageId' | 'state'> & Partial<Message>) {
    super(202, 'denied', `denied: ${row.reason ?? 'the send policy refused this message'}`);
  }
}

/** The daemon could not be reached on its socket (not running, restarting, wrong path or permissions): the call did not reach it. */
export class DaemonUnreachableError extends WaSupervisorError {
  constructor(
    readonly socket: string,
    readonly errno: string | undefined,
  ) {
    super(`cannot reach the wa-supervisor daemon at ${socket} (${errno ?? 'connection failed'})`);
  }
}

/**
 * The connection broke with the request in flight (the daemon was killed or restarted while it
 * answered): whether the call took effect is not known. Repeat a send only with its idempotencyKey.
 */
export class ConnectionLostError extends WaSupervisorError {
  constructor(
    readonly socket: string,
    readonly errno: string,
  ) {
    super(`the connection to the wa-supervisor daemon at ${socket} broke before it answered (${errno}); the call may or may not have taken effect`);
  }
}

/** The call did not finish within its time limit (it may still take effect). */
export class TimeoutError extends WaSupervisorError {
  constructor(
    readonly ms: number,
    what: string,
  ) {
    super(`${what}: no answer within ${ms} ms`);
  }
}

/** `waitFor` saw the message end in a state it cannot leave (failed, denied, expired, cancelled, held). */
export class MessageEndedError extends WaSupervisorError {
  constructor(readonly row: Message) {
    super(`message ${row.id} ended ${row.state}${row.reason ? `: ${row.reason}` : ''}`);
  }
}

/** The error class for a daemon's error reply. */
export function refusal(status: number, code: string, message: string): DaemonRefusedError {
  if (status === 400 || status === 413) return new ValidationError(status, code, message);
  if (status === 401 || status === 403) return new ForbiddenError(status, code, message);
  if (status === 404) return new NotFoundError(status, code, message);
  if (status === 409) return new ConflictError(status, code, message);
  return new DaemonRefusedError(status, code, message);
}
