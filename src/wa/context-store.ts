// Whether the installed Baileys carries the project's patch (patches/): all sockets' key stores
// share one AsyncLocalStorage. Without it every socket enables a storage of its own for good, and
// on Node < 24 each enabled storage costs time on every promise the process creates, so the
// daemon slows down with every reconnect (docs/architecture.md, "One async context store").
import { readFileSync } from 'node:fs';

/** True when Baileys' auth-utils shares one context store across sockets. */
export function baileysSharesContextStore(): boolean {
  try {
    const authUtils = new URL('./Utils/auth-utils.js', import.meta.resolve('@whiskeysockets/baileys'));
    return readFileSync(authUtils, 'utf8').includes('const sharedTxStorage = new AsyncLocalStorage()');
  } catch {
    return false;
  }
}

/** Node lines where AsyncLocalStorage costs nothing per extra storage (async context frames by default). */
export function contextFramesByDefault(version = process.versions.node): boolean {
  return Number(version.split('.')[0]) >= 24;
}
