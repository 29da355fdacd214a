/**
 * Every iq from a client gets an answer: the handler for its xmlns (and first child), or an
 * empty result, logged as unhandled, so no client waits for its query timeout. Injected iq
 * faults (drop, error, delay) are applied first.
 */
import type { BinaryNode } from '@whiskeysockets/baileys';
import type { EmulatorCore } from './core.js';
import { encryptIq } from './iq-encrypt.js';
import { groupsIq } from './iq-groups.js';
import { mediaConnIq } from './iq-media.js';
import { blocklistIq, passiveIq, privacyIq, propsIq, removeCompanionIq } from './iq-misc.js';
import { usyncIq } from './iq-usync.js';
import { onLinkCodeIq } from './pairing-code.js';
import type { Session } from './session.js';
import { firstChildTag, iqError, iqResult } from './stanza.js';

type IqHandler = (core: EmulatorCore, session: Session, iq: BinaryNode) => BinaryNode | null;

interface Route {
  xmlns: string;
  /** First child tag; absent = any. */
  child?: string;
  handle: IqHandler;
}

const ROUTES: Route[] = [
  { xmlns: 'encrypt', handle: encryptIq },
  { xmlns: 'usync', handle: (core, _session, iq) => usyncIq(core, iq) },
  { xmlns: 'w:g2', handle: groupsIq },
  { xmlns: 'passive', handle: passiveIq },
  { xmlns: 'abt', child: 'props', handle: propsIq },
  { xmlns: 'blocklist', handle: blocklistIq },
  { xmlns: 'privacy', handle: privacyIq },
  { xmlns: 'w:m', child: 'media_conn', handle: mediaConnIq },
  { xmlns: 'w:p', handle: (_core, _session, iq) => iqResult(iq) },
  { xmlns: 'md', child: 'link_code_companion_reg', handle: onLinkCodeIq },
  { xmlns: 'md', child: 'remove-companion-device', handle: removeCompanionIq },
];

/** Answers (or, per fault, drops, fails or delays) one client iq. */
export function handleIq(core: EmulatorCore, session: Session, iq: BinaryNode): void {
  const type = iq.attrs.type;
  if (type === 'result' || type === 'error') return; // an answer to nothing we are waiting for
  const rule = core.faults.takeIqRule(session.phone, iq);
  const what = `${iq.attrs.xmlns ?? '?'}/${firstChildTag(iq) || '-'}`;
  if (rule?.kind === 'iq-drop') {
    session.event(`iq ${what} dropped by fault`);
    return;
  }
  if (rule?.kind === 'iq-error') {
    session.event(`iq ${what} answered with error ${rule.code ?? 500} by fault`);
    session.send(iqError(iq, rule.code ?? 500));
    return;
  }
  if (rule?.kind === 'iq-delay') {
    session.event(`iq ${what} delayed ${rule.ms ?? 1000} ms by fault`);
    setTimeout(() => answer(core, session, iq, what), rule.ms ?? 1000).unref();
    return;
  }
  answer(core, session, iq, what);
}

/** Runs the handler even if the connection is closing (a logout iq arrives with the close). */
function answer(core: EmulatorCore, session: Session, iq: BinaryNode, what: string): void {
  const xmlns = iq.attrs.xmlns;
  const first = firstChildTag(iq);
  const route = ROUTES.find((r) => r.xmlns === xmlns && (r.child === undefined || r.child === first));
  if (!route) {
    session.event(`unhandled iq ${what}; answered with an empty result`);
    core.log.debug({ iq: what }, 'unhandled iq');
    session.send(iqResult(iq));
    return;
  }
  const reply = route.handle(core, session, iq);
  if (reply) session.send(reply);
}
