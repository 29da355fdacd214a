// What a runner does after a connection closes, per close code: the table in docs/accounts.md.
// WhatsApp's codes arrive through Baileys' DisconnectReason; codes of our own are names, not
// invented numbers (a probe timeout is `stale`, a connect that never opened is `watchdog`).

/** Why a connection ended, as the adapter reports it. */
export interface CloseInfo {
  /** The WhatsApp/Baileys status code, or the HTTP status of a refused upgrade; null for our own reasons. */
  code: number | null;
  /** A stable name: Baileys' DisconnectReason name, or one of ours (`stale`, `watchdog`, `upgrade_refused`, `local`). */
  name: string;
  /** Human text from the server or the library. */
  message: string;
}

/** What to do next. */
export type CloseAction =
  /** Reconnect at once, without spending backoff (515 after pairing, restart required). */
  | { kind: 'reconnect_now' }
  /** Back off with jitter, then reconnect. */
  | { kind: 'backoff' }
  /** Stop and wait for an operator command in the given state. */
  | { kind: 'stop'; state: 'needs_pairing' | 'conflict' | 'forbidden' };

/** Baileys' DisconnectReason names by code, for codes Baileys does not name on the error itself. */
export const CLOSE_CODE_NAMES: Readonly<Record<number, string>> = {
  401: 'loggedOut',
  403: 'forbidden',
  408: 'connectionLost',
  411: 'multideviceMismatch',
  428: 'connectionClosed',
  440: 'connectionReplaced',
  500: 'badSession',
  503: 'unavailableService',
  515: 'restartRequired',
};

/** Decides the action for a close. Unknown codes back off: retrying carefully beats stopping for ever. */
export function actionForClose(close: CloseInfo): CloseAction {
  if (close.name === 'upgrade_refused') return { kind: 'backoff' };
  switch (close.code) {
    case 515:
      return { kind: 'reconnect_now' };
    case 401:
    case 411:
      return { kind: 'stop', state: 'needs_pairing' };
    case 440:
      return { kind: 'stop', state: 'conflict' };
    case 403:
      return { kind: 'stop', state: 'forbidden' };
    default:
      return { kind: 'backoff' };
  }
}
