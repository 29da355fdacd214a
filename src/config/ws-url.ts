// What counts as a WebSocket URL for an account (the emulator, a proxy, WhatsApp itself). The
// config check and `accounts add` share this one test, so a URL one accepts the other accepts too.

/** What both say about a value that is not one. */
export const WS_URL_EXPECTED = 'expected a ws:// or wss:// URL';

/** True for a parseable ws:// or wss:// URL. */
export function isWsUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === 'ws:' || u.protocol === 'wss:';
  } catch {
    return false;
  }
}
