// What a failed send means for the outbox: whether the message's stanza can have left the process.
// Baileys' sendMessage (rc14) writes the message in one place, the last step of relayMessage;
// everything before it (looking up the recipient's devices, fetching their keys, encrypting)
// writes nothing of the message. So a send that fails with one of these errors cannot have
// reached anyone:
//   - the socket was not open when the send began;
//   - Boom 428 "Connection Closed": Baileys checks the socket right before writing, and the
//     device and key queries before it fail with the same error when the connection goes;
//   - "All encryptions failed" (500) and "Not authenticated": local, before anything is written.
// Anything else may come after the write (its own timeout, a ws write error, a key-store commit
// after the write), so it is treated as possibly sent.

/** A send that failed before its stanza was written: nothing can have reached anyone. */
export class SendNotWrittenError extends Error {
  readonly notWritten = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SendNotWrittenError';
  }
}

/** True for an error from a send that certainly wrote nothing (see above). */
export function isNotWritten(err: unknown): boolean {
  return (err as { notWritten?: unknown } | null)?.notWritten === true;
}

/** Wraps an error from Baileys' sendMessage as SendNotWrittenError when it proves nothing was written. */
export function classifySendError(err: unknown): unknown {
  const e = err as { output?: { statusCode?: number }; message?: string } | null;
  const status = e?.output?.statusCode;
  const message = e?.message ?? '';
  if (status === 428 || /^(All encryptions failed|Not authenticated)$/.test(message)) {
    return new SendNotWrittenError(`not sent: ${message || `error ${status}`}`, { cause: err });
  }
  return err;
}

/**
 * A failed group metadata query. Baileys asks for a group's members before it writes a group
 * message, so nothing was written. The server's code (403 not a member, 404 no such group; Baileys
 * reports an iq error's code as the error's data) is kept as the status code, so the gate fails
 * the row at once on a refusal and retries a timeout or a closed connection.
 */
export function groupMetadataFailed(jid: string, err: unknown): SendNotWrittenError {
  const e = err as { data?: unknown; output?: { statusCode?: number }; message?: string } | null;
  const code = typeof e?.data === 'number' ? e.data : e?.output?.statusCode;
  const error = new SendNotWrittenError(`not sent: the group metadata query for ${jid} failed: ${e?.message ?? String(err)}${code ? ` (${code})` : ''}`, { cause: err });
  return code ? Object.assign(error, { output: { statusCode: code } }) : error;
}
