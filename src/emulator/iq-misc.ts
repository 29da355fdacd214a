/**
 * The small iqs a client sends around login: passive/active, AB props, blocklist, privacy
 * settings and tokens, `w:p` ping, and companion removal (logout).
 */
import type { BinaryNode } from '@whiskeysockets/baileys';
import { accountOf } from './account-of.js';
import type { EmulatorCore } from './core.js';
import { flushOffline } from './delivery.js';
import type { Session } from './session.js';
import { child, firstChildTag, iqResult } from './stanza.js';

/** Privacy settings every account reports (WhatsApp's defaults). */
const PRIVACY_DEFAULTS: Record<string, string> = {
  last: 'all',
  online: 'all',
  profile: 'all',
  status: 'contacts',
  groupadd: 'all',
  readreceipts: 'all',
  calladd: 'all',
  messages: 'all',
};

/**
 * `<passive><active/>`: the client is ready for pushed stanzas, so the offline queue goes out
 * now (after the answer). `<passive><passive/>` stops pushes again.
 */
export function passiveIq(core: EmulatorCore, session: Session, iq: BinaryNode): null {
  session.send(iqResult(iq));
  if (firstChildTag(iq) !== 'active') {
    session.active = false;
    return null;
  }
  session.active = true;
  const account = accountOf(core, session);
  if (account) {
    flushOffline(core, session, account.companion).catch((error: unknown) => session.event(`offline flush failed: ${String(error)}`));
  }
  return null;
}

/** `<props protocol=1/>`: no AB props, a fixed hash. */
export function propsIq(_core: EmulatorCore, _session: Session, iq: BinaryNode): BinaryNode {
  return iqResult(iq, [{ tag: 'props', attrs: { protocol: '1', hash: 'emulator-props-v1', refresh: '86400' } }]);
}

/** An empty blocklist. */
export function blocklistIq(_core: EmulatorCore, _session: Session, iq: BinaryNode): BinaryNode {
  return iqResult(iq, [{ tag: 'list', attrs: {} }]);
}

/** Privacy get answers the defaults; sets (settings, tokens) are accepted. */
export function privacyIq(_core: EmulatorCore, _session: Session, iq: BinaryNode): BinaryNode {
  if (iq.attrs.type === 'get' && child(iq, 'privacy')) {
    const categories = Object.entries(PRIVACY_DEFAULTS).map(([name, value]) => ({ tag: 'category', attrs: { name, value } }));
    return iqResult(iq, [{ tag: 'privacy', attrs: {}, content: categories }]);
  }
  return iqResult(iq);
}

/** `<remove-companion-device jid>` (logout): unlinks the device. */
export function removeCompanionIq(core: EmulatorCore, session: Session, iq: BinaryNode): BinaryNode {
  const jid = child(iq, 'remove-companion-device')?.attrs.jid;
  const ref = jid ? core.world.resolve(jid) : undefined;
  if (ref && ref.device !== 0 && ref.user.companions.delete(ref.device)) {
    session.event(`companion ${ref.user.phone}:${ref.device} removed by the client (logout)`);
  }
  return iqResult(iq);
}
