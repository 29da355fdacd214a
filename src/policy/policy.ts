// Send policy: ordered rules, first match wins, an explicit default; and the per-account
// allowlist, which overrides everything: once an account has `allowTo`, a recipient not on it is
// denied whatever the rules say. Pure functions, evaluated at enqueue and again before sending.

/** What a rule decides. */
export type PolicyAction = 'allow' | 'deny' | 'hold';

/** What is being sent: a message to a person, an operator alert, a reaction, a receipt... */
export type SendKind = 'message' | 'alert' | 'reaction' | 'receipt' | 'presence';

/** One rule; every given match field must match (`peer` may list several). */
export interface PolicyRule {
  action: PolicyAction;
  match: {
    account?: string | string[];
    peer?: string | string[];
    chatType?: 'direct' | 'group';
    kind?: SendKind | SendKind[];
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
  /** The phone-number JID of the peer when it is known (a LID resolved to its number), for allowlists. */
  peerPhoneJid: string | null;
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

/** Decides one send. */
export function decide(policy: Policy, req: SendRequest): PolicyDecision {
  const peer = req.peer.toLowerCase();
  if (UNSENDABLE_SERVERS.some((s) => peer.endsWith(s))) {
    return { action: 'deny', rule: 'recipient', reason: `${req.peer} is a status, broadcast list or channel; nothing is sent there` };
  }
  const candidates = [req.peer, ...(req.peerPhoneJid && req.peerPhoneJid !== req.peer ? [req.peerPhoneJid] : [])];
  if (req.kind === 'alert' && !candidates.some((c) => policy.operators.includes(c))) {
    return { action: 'deny', rule: 'operators', reason: `alerts go only to operators; ${req.peer} is not one` };
  }
  // Own keys only: an account named "constructor" must not find Object.prototype's.
  const allow = Object.hasOwn(policy.allowTo, req.account) ? policy.allowTo[req.account] : undefined;
  if (allow && !candidates.some((c) => allow.includes(c))) {
    const why = req.peer.endsWith('@lid') && !req.peerPhoneJid ? ' (a LID whose number is not known cannot be checked, so it is refused)' : '';
    return { action: 'deny', rule: 'allowTo', reason: `${req.peer} is not in allowTo of account ${req.account}${why}` };
  }
  for (const [i, rule] of policy.rules.entries()) {
    if (!matches(rule, req, candidates)) continue;
    const name = rule.name ?? `rules[${i}]`;
    return { action: rule.action, rule: name, reason: `${rule.action} by ${name}` };
  }
  return { action: policy.default, rule: 'default', reason: `${policy.default} by default` };
}

function matches(rule: PolicyRule, req: SendRequest, candidates: string[]): boolean {
  const m = rule.match;
  if (m.account !== undefined && !list(m.account).includes(req.account)) return false;
  if (m.peer !== undefined && !list(m.peer).some((p) => candidates.includes(p))) return false;
  if (m.chatType !== undefined && m.chatType !== req.chatType) return false;
  if (m.kind !== undefined && !list(m.kind).includes(req.kind)) return false;
  return true;
}

function list<T>(v: T | T[]): T[] {
  return Array.isArray(v) ? v : [v];
}
