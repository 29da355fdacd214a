// Send policy: ordered rules, first match wins, an explicit default; and the per-account
// allowlist, which overrides everything: once an account has `allowTo`, a recipient not on it is
// denied whatever the rules say. Pure functions, evaluated at enqueue and again before sending.
// A person has two identities, a phone-number JID and a LID; a check that needs the one that is
// not known fails closed (deny) instead of passing.

/** What a rule decides. */
export type PolicyAction = 'allow' | 'deny' | 'hold';

/**
 * What a row or a send is: `message` (a text), a media kind, a location or contact card, a
 * reaction, an edit or a delete of one of our messages, an operator `alert`, a read `receipt`.
 */
export const ROW_KINDS = ['message', 'alert', 'reaction', 'receipt', 'presence', 'image', 'video', 'audio', 'document', 'sticker', 'location', 'contact', 'edit', 'delete'] as const;
export type SendKind = (typeof ROW_KINDS)[number];

/**
 * What a rule's `kind` may name: a row kind, or a family. `message` names every message a person
 * sees in a chat (text and every kind below), so a rule written for messages before media
 * existed still covers media; `text` names text alone, `media` the five media kinds.
 */
export const RULE_KINDS = [...ROW_KINDS, 'text', 'media'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

const MEDIA_ROW_KINDS: readonly SendKind[] = ['image', 'video', 'audio', 'document', 'sticker'];
const CHAT_ROW_KINDS: readonly SendKind[] = ['message', ...MEDIA_ROW_KINDS, 'location', 'contact', 'reaction', 'edit', 'delete'];

/** True when a rule naming `rule` applies to a send of kind `kind`. */
export function kindMatches(rule: RuleKind, kind: SendKind): boolean {
  if (rule === 'message') return CHAT_ROW_KINDS.includes(kind);
  if (rule === 'text') return kind === 'message';
  if (rule === 'media') return MEDIA_ROW_KINDS.includes(kind);
  return rule === kind;
}

/** One rule; every given match field must match (`peer` may list several). */
export interface PolicyRule {
  action: PolicyAction;
  match: {
    account?: string | string[];
    peer?: string | string[];
    chatType?: 'direct' | 'group';
    kind?: RuleKind | RuleKind[];
  };
  /** A name for audits; defaults to `rules[i]`. */
  name?: string;
}

/** The policy as configured (peers already normalised to JIDs). */
export interface Policy {
  default: 'allow' | 'deny';
  rules: PolicyRule[];
  /** Per account: the only recipients (normalised JIDs) it may send to. */
  allowTo: Record<string, string[]>;
  /** Operator JIDs: the only recipients of `kind: "alert"`. */
  operators: string[];
}

/** A send to decide on. */
export interface SendRequest {
  account: string;
  /** Normalised recipient JID. */
  peer: string;
  /** For a `@lid` peer: its phone-number JID when known, else null (the number is unknown). */
  peerPhoneJid: string | null;
  /** For a phone-number peer: its LID JID when known; null or absent: the LID is unknown. */
  peerLidJid?: string | null | undefined;
  chatType: 'direct' | 'group';
  kind: SendKind;
}

/** A decision and why. */
export interface PolicyDecision {
  action: PolicyAction;
  /** The rule that decided: `rules[2]` or its name, `allowTo`, `operators`, `recipient`, or `default`. */
  rule: string;
  reason: string;
}

/** An empty policy: allow everything (the default for a config without `policy`). */
export const OPEN_POLICY: Policy = { default: 'allow', rules: [], allowTo: {}, operators: [] };

/**
 * Chats nothing may be sent to, whatever the rules say: status updates, broadcast lists and
 * channels. Recipient normalisation refuses them already; this keeps a row or a policy that
 * names one (from an older database, or built in code) from passing a `direct` rule by accident.
 */
const UNSENDABLE_SERVERS = ['@broadcast', '@newsletter'];

/** A decision, and whether it rests on an identity of the peer that is not known (resolving it may change it). */
export interface Evaluation {
  decision: PolicyDecision;
  unresolved: boolean;
}

/** The identity a direct peer lacks, the server of JIDs of that kind, and how reasons name it. */
interface Missing {
  server: '@s.whatsapp.net' | '@lid';
  what: string;
}

function missingIdentity(req: SendRequest): Missing | null {
  if (req.peer.endsWith('@lid') && !req.peerPhoneJid) return { server: '@s.whatsapp.net', what: 'its phone number' };
  if (req.peer.endsWith('@s.whatsapp.net') && !req.peerLidJid) return { server: '@lid', what: 'its LID' };
  return null;
}

/** Decides one send. */
export function decide(policy: Policy, req: SendRequest): PolicyDecision {
  return evaluate(policy, req).decision;
}

/**
 * Decides one send and says whether the answer rests on an unknown identity: a list or rule that
 * names JIDs of the kind the peer lacks (numbers for a LID with no known number, LIDs for a
 * number with no known LID) cannot be checked, so it refuses.
 */
export function evaluate(policy: Policy, req: SendRequest): Evaluation {
  const done = (decision: PolicyDecision, unresolved = false): Evaluation => ({ decision, unresolved });
  const peer = req.peer.toLowerCase();
  if (UNSENDABLE_SERVERS.some((s) => peer.endsWith(s))) {
    return done({ action: 'deny', rule: 'recipient', reason: `${req.peer} is a status, broadcast list or channel; nothing is sent there` });
  }
  const candidates = [...new Set([req.peer, req.peerPhoneJid, req.peerLidJid].filter((c): c is string => !!c))];
  const missing = missingIdentity(req);
  const namesMissing = (jids: string[]) => missing !== null && jids.some((j) => j.endsWith(missing.server));
  if (req.kind === 'alert' && !candidates.some((c) => policy.operators.includes(c))) {
    const open = namesMissing(policy.operators);
    const why = open ? ` (${missing!.what} could not be resolved, so it cannot be checked)` : '';
    return done({ action: 'deny', rule: 'operators', reason: `alerts go only to operators; ${req.peer} is not one${why}` }, open);
  }
  // Own keys only: an account named "constructor" must not find Object.prototype's.
  const allow = Object.hasOwn(policy.allowTo, req.account) ? policy.allowTo[req.account] : undefined;
  if (allow && !candidates.some((c) => allow.includes(c))) {
    const open = namesMissing(allow);
    const whose = missing?.server === '@lid' ? 'number whose LID' : 'LID whose number';
    const why = open ? ` (a ${whose} is not known cannot be checked, so it is refused)` : '';
    return done({ action: 'deny', rule: 'allowTo', reason: `${req.peer} is not in allowTo of account ${req.account}${why}` }, open);
  }
  for (const [i, rule] of policy.rules.entries()) {
    const m = matches(rule, req, candidates);
    if (m === false) continue;
    const name = rule.name ?? `rules[${i}]`;
    if (m === 'peer' && namesMissing(list(rule.match.peer!))) {
      const named = missing!.server === '@lid' ? 'LIDs' : 'numbers';
      return done({ action: 'deny', rule: name, reason: `${req.peer}: ${missing!.what} could not be resolved, so ${name} (which names ${named}) cannot be checked; refused` }, true);
    }
    if (m === 'peer') continue;
    return done({ action: rule.action, rule: name, reason: `${rule.action} by ${name}` });
  }
  return done({ action: policy.default, rule: 'default', reason: `${policy.default} by default` });
}

/** true: the rule matches; false: it does not; 'peer': everything but the peer matches. */
function matches(rule: PolicyRule, req: SendRequest, candidates: string[]): boolean | 'peer' {
  const m = rule.match;
  if (m.account !== undefined && !list(m.account).includes(req.account)) return false;
  if (m.chatType !== undefined && m.chatType !== req.chatType) return false;
  if (m.kind !== undefined && !list(m.kind).some((k) => kindMatches(k, req.kind))) return false;
  if (m.peer !== undefined && !list(m.peer).some((p) => candidates.includes(p))) return 'peer';
  return true;
}

function list<T>(v: T | T[]): T[] {
  return Array.isArray(v) ? v : [v];
}
