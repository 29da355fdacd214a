// A direct peer's other identity (the number of a LID, the LID of a number) for the policy. What
// the account has learnt is read at once; what it has not may be asked of its open connection,
// bounded by a short timeout. An answer that is not a JID of the expected kind counts as none.
import type { SendRequest } from '../policy/policy.js';
import type { WaConnection } from '../wa/types.js';
import { normaliseRecipient } from './recipient.js';

/** How long an enqueue or a send waits for the connection to resolve an identity. */
export const RESOLVE_TIMEOUT_MS = 3000;

/** What the gate may ask of an open connection besides sending: it reaches only the server. */
export type IdentityResolver = Pick<WaConnection, 'resolveIdentity'>;

/** Lookups of the mappings an account has learnt (Baileys' `lid-mapping` keys). */
export interface IdentityLookups {
  phoneJidForLid: (account: string, lidJid: string) => string | null;
  lidJidForPhone?: ((account: string, phoneJid: string) => string | null) | undefined;
}

/** The identity fields of a SendRequest. */
export type Identities = Required<Pick<SendRequest, 'peerPhoneJid' | 'peerLidJid'>>;

/** The peer's other identity as the account knows it now (nulls for a group). */
export function knownIdentities(lookups: IdentityLookups, account: string, peer: string): Identities {
  if (peer.endsWith('@lid')) return { peerPhoneJid: ofServer(lookups.phoneJidForLid(account, peer), '@s.whatsapp.net'), peerLidJid: null };
  if (peer.endsWith('@s.whatsapp.net')) return { peerPhoneJid: null, peerLidJid: ofServer(lookups.lidJidForPhone?.(account, peer) ?? null, '@lid') };
  return { peerPhoneJid: null, peerLidJid: null };
}

/** Asks the connection for the peer's other identity; null when there is none within timeoutMs. */
export async function askIdentities(resolver: IdentityResolver | null | undefined, peer: string, timeoutMs = RESOLVE_TIMEOUT_MS): Promise<Identities | null> {
  const lid = peer.endsWith('@lid');
  if (!resolver || (!lid && !peer.endsWith('@s.whatsapp.net'))) return null;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
  try {
    const asked = resolver.resolveIdentity(peer).catch(() => null);
    const other = ofServer(await Promise.race([asked, timeout]), lid ? '@s.whatsapp.net' : '@lid');
    if (!other) return null;
    return lid ? { peerPhoneJid: other, peerLidJid: null } : { peerPhoneJid: null, peerLidJid: other };
  } finally {
    clearTimeout(timer);
  }
}

/** The normalised JID when raw is one of the given server, else null. */
function ofServer(raw: string | null, server: '@s.whatsapp.net' | '@lid'): string | null {
  if (!raw) return null;
  const r = normaliseRecipient(raw);
  return 'error' in r || !r.jid.endsWith(server) ? null : r.jid;
}
