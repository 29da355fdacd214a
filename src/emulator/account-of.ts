/** Resolving the account and companion a connection is logged in as. */
import type { EmulatorCore } from './core.js';
import type { Session } from './session.js';
import type { Companion, User } from './user.js';

/** The logged-in (or paired) user and companion behind a connection, if any. */
export function accountOf(core: EmulatorCore, session: Session): { user: User; companion: Companion } | undefined {
  if (session.phone === null || session.device === null) return undefined;
  const user = core.world.user(session.phone);
  const companion = user?.companions.get(session.device);
  return user && companion ? { user, companion } : undefined;
}

/** The libsignal address the simulated devices use for a real companion. */
export function companionAddress(phone: string, device: number): string {
  return `${phone}.${device}`;
}
