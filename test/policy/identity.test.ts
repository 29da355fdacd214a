// A person has two identities, a number and a LID. Rules and lists naming one must catch sends
// to the other, and a check that needs the identity not known refuses (issue 13: a deny rule for
// a number let that person's unknown LID through).
import { describe, expect, it } from 'vitest';
import { knownIdentities } from '../../src/outbox/peer-identity.js';
import { normaliseRecipient } from '../../src/outbox/recipient.js';
import { decide, evaluate, type Policy, type PolicyRule, type SendRequest } from '../../src/policy/policy.js';

const NUMBER = '15550004444@s.whatsapp.net';
const LID = '177290488036108@lid';
const OTHER = '15550001111@s.whatsapp.net';
const OTHER_LID = '111111111111111@lid';
const GROUP = '120363025246125888@g.us';

function policy(p: Partial<Policy> = {}): Policy {
  return { default: 'allow', rules: [], allowTo: {}, operators: [], ...p };
}
function req(r: Partial<SendRequest> = {}): SendRequest {
  return { account: 'main', peer: NUMBER, peerPhoneJid: null, peerLidJid: null, chatType: 'direct', kind: 'message', ...r };
}
const denyNumber = policy({ rules: [{ action: 'deny', name: 'blocked', match: { peer: NUMBER } }] });
const denyLid = policy({ rules: [{ action: 'deny', name: 'blocked', match: { peer: LID } }] });

describe('a LID whose number is not known', () => {
  it('is refused by a deny rule naming a number, with a reason saying the number could not be resolved', () => {
    const e = evaluate(denyNumber, req({ peer: LID }));
    expect(e).toEqual({
      decision: { action: 'deny', rule: 'blocked', reason: `${LID}: its phone number could not be resolved, so blocked (which names numbers) cannot be checked; refused` },
      unresolved: true,
    });
  });

  it('is refused, not held, by a hold rule naming a number', () => {
    const p = policy({ rules: [{ action: 'hold', name: 'review', match: { peer: [OTHER, NUMBER] } }] });
    expect(decide(p, req({ peer: LID }))).toMatchObject({ action: 'deny', rule: 'review' });
  });

  it('is refused by an allow rule naming a number too: the first rule that cannot be checked refuses, whatever follows', () => {
    const p = policy({ default: 'allow', rules: [{ action: 'allow', name: 'friends', match: { peer: OTHER } }, { action: 'deny', match: { chatType: 'group' } }] });
    expect(decide(p, req({ peer: LID }))).toMatchObject({ action: 'deny', rule: 'friends' });
  });

  it('is compared directly with LIDs: a rule naming it decides, a rule naming only other LIDs or groups does not refuse it', () => {
    expect(decide(denyLid, req({ peer: LID }))).toMatchObject({ action: 'deny', rule: 'blocked', reason: 'deny by blocked' });
    const others = policy({ rules: [{ action: 'deny', match: { peer: [OTHER_LID, GROUP] } }] });
    expect(evaluate(others, req({ peer: LID }))).toEqual({ decision: { action: 'allow', rule: 'default', reason: 'allow by default' }, unresolved: false });
  });

  it('once its number is known, meets the rules of that number', () => {
    expect(decide(denyNumber, req({ peer: LID, peerPhoneJid: NUMBER }))).toEqual({ action: 'deny', rule: 'blocked', reason: 'deny by blocked' });
    expect(evaluate(denyNumber, req({ peer: LID, peerPhoneJid: OTHER }))).toMatchObject({ decision: { action: 'allow' }, unresolved: false });
  });

  it('is refused by allowTo listing numbers, and flagged as resolvable', () => {
    const p = policy({ allowTo: { main: [OTHER] } });
    expect(evaluate(p, req({ peer: LID }))).toMatchObject({ decision: { action: 'deny', rule: 'allowTo' }, unresolved: true });
    expect(decide(p, req({ peer: LID, peerPhoneJid: OTHER })).action).toBe('allow');
  });

  it('is not an operator for an alert until its number is known', () => {
    const p = policy({ operators: [NUMBER] });
    expect(evaluate(p, req({ peer: LID, kind: 'alert' }))).toMatchObject({ decision: { action: 'deny', rule: 'operators' }, unresolved: true });
    expect(decide(p, req({ peer: LID, peerPhoneJid: NUMBER, kind: 'alert' })).action).toBe('allow');
  });
});

describe('a number and the rules naming LIDs', () => {
  it('a rule naming a LID catches a send to that person\'s number when the mapping is known', () => {
    expect(decide(denyLid, req({ peer: NUMBER, peerLidJid: LID }))).toEqual({ action: 'deny', rule: 'blocked', reason: 'deny by blocked' });
    expect(decide(denyLid, req({ peer: NUMBER, peerLidJid: OTHER_LID })).action).toBe('allow');
  });

  it('a number whose LID is not known is refused by a rule naming a LID', () => {
    expect(evaluate(denyLid, req({ peer: NUMBER }))).toEqual({
      decision: { action: 'deny', rule: 'blocked', reason: `${NUMBER}: its LID could not be resolved, so blocked (which names LIDs) cannot be checked; refused` },
      unresolved: true,
    });
  });

  it('allowTo listing a LID admits that person\'s number once the mapping is known, and refuses it while it is not', () => {
    const p = policy({ allowTo: { main: [LID] } });
    expect(decide(p, req({ peer: NUMBER, peerLidJid: LID })).action).toBe('allow');
    const e = evaluate(p, req({ peer: NUMBER }));
    expect(e).toMatchObject({ decision: { action: 'deny', rule: 'allowTo' }, unresolved: true });
    expect(e.decision.reason).toMatch(/LID is not known/);
  });

  it('rules naming numbers only decide a number as before, whether its LID is known or not', () => {
    expect(evaluate(denyNumber, req({ peer: NUMBER }))).toMatchObject({ decision: { action: 'deny', reason: 'deny by blocked' }, unresolved: false });
    expect(evaluate(denyNumber, req({ peer: OTHER }))).toMatchObject({ decision: { action: 'allow' }, unresolved: false });
  });
});

describe('accounts whose rules name no peer are unaffected', () => {
  const p = policy({
    allowTo: { other: [OTHER] },
    rules: [
      { action: 'deny', match: { kind: 'reaction' } },
      { action: 'deny', match: { account: 'other', peer: NUMBER } },
      { action: 'hold', match: { chatType: 'direct', kind: 'receipt', peer: OTHER } },
    ],
  });

  it.each([
    { name: 'a LID, number unknown', r: req({ peer: LID }) },
    { name: 'a number, LID unknown', r: req({ peer: NUMBER }) },
    { name: 'a group', r: req({ peer: GROUP, chatType: 'group' }) },
  ])('$name is allowed by the default, and nothing needs resolving', ({ r }) => {
    expect(evaluate(p, r)).toEqual({ decision: { action: 'allow', rule: 'default', reason: 'allow by default' }, unresolved: false });
  });

  it('a rule that decides before any peer rule still decides (shadow mode refuses, an allow for the LID itself admits)', () => {
    const shadow = policy({ rules: [{ action: 'deny', name: 'shadow', match: { chatType: 'direct' } }, ...denyNumber.rules] });
    expect(evaluate(shadow, req({ peer: LID }))).toMatchObject({ decision: { rule: 'shadow', reason: 'deny by shadow' }, unresolved: false });
    const allowLid = policy({ rules: [{ action: 'allow', name: 'ok', match: { peer: LID } }, ...denyNumber.rules] });
    expect(decide(allowLid, req({ peer: LID }))).toMatchObject({ action: 'allow', rule: 'ok' });
  });
});

// Every spelling of a refused person, under every kind of refusal, known mapping or not: never allow.
describe('property: no spelling of a refused person is allowed', () => {
  /** A seeded generator (mulberry32), so a failure can be replayed. */
  function rng(seed: number): () => number {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const randomCase = (r: () => number, s: string) => [...s].map((c) => (r() < 0.5 ? c.toUpperCase() : c)).join('');
  const suffix = (r: () => number) => `${pick(r, ['', '', '.0', '_1'])}${pick(r, ['', '', ':0', ':2', ':12', ':99999'])}`;
  const pad = (r: () => number, s: string) => `${pick(r, ['', ' ', '\t', '\u00a0'])}${s}${pick(r, ['', ' ', '\n'])}`;

  /** A spelling of 15550004444 or of its LID. */
  function spelling(r: () => number): string {
    const digits = '15550004444';
    switch (Math.floor(r() * 4)) {
      case 0: {
        // A number as people write it: separators anywhere between digits, maybe a "+".
        const body = [...digits].map((d, i) => (i > 0 && r() < 0.3 ? pick(r, [' ', '-', '.', '(', ')', '\u2009']) : '') + d).join('');
        return pad(r, `${r() < 0.5 ? '+' : ''}${body}`);
      }
      case 1:
        return pad(r, `${digits}${suffix(r)}@${randomCase(r, pick(r, ['s.whatsapp.net', 'c.us']))}`);
      default:
        return pad(r, `177290488036108${suffix(r)}@${randomCase(r, 'lid')}`);
    }
  }

  /** Rules as the config writes them: peers normalised from any spelling. */
  const jid = (raw: string) => {
    const n = normaliseRecipient(raw);
    if ('error' in n) throw new Error(n.error);
    return n.jid;
  };
  const ruleKinds: Array<{ name: string; policy: (target: string) => Policy }> = [
    { name: 'allowTo miss', policy: () => policy({ allowTo: { main: [OTHER, OTHER_LID] } }) },
    { name: 'deny rule', policy: (t) => policy({ rules: [{ action: 'deny', match: { peer: jid(t) } }] }) },
    { name: 'hold rule', policy: (t) => policy({ rules: [{ action: 'hold', match: { peer: [jid(OTHER), jid(t)] } }] }) },
    { name: 'shadow mode', policy: () => policy({ rules: [{ action: 'deny', match: { account: 'main', chatType: 'direct' } }] }) },
    { name: 'deny by default, allow rule for another', policy: () => policy({ default: 'deny', rules: [{ action: 'allow', match: { peer: [OTHER, OTHER_LID] } }] satisfies PolicyRule[] }) },
  ];
  const targets = ['+1 555 000 4444', '15550004444@c.us', '177290488036108:3@LID'];
  const knowledge = [
    { name: 'mapping known', map: new Map([[LID, NUMBER], [NUMBER, LID]]) },
    { name: 'mapping unknown', map: new Map<string, string>() },
  ];

  it.each(ruleKinds.flatMap((k) => targets.map((t) => ({ ...k, target: t }))))('$name (rule written as $target)', ({ policy: make, target }) => {
    const p = make(target);
    const r = rng(0x13 + target.length);
    for (let i = 0; i < 400; i++) {
      const raw = spelling(r);
      const n = normaliseRecipient(raw);
      if ('error' in n) throw new Error(`${JSON.stringify(raw)} should name the person: ${n.error}`);
      expect([NUMBER, LID], JSON.stringify(raw)).toContain(n.jid);
      for (const k of knowledge) {
        const lookups = { phoneJidForLid: (_a: string, j: string) => k.map.get(j) ?? null, lidJidForPhone: (_a: string, j: string) => k.map.get(j) ?? null };
        const d = decide(p, { account: 'main', peer: n.jid, chatType: n.chatType, kind: 'message', ...knownIdentities(lookups, 'main', n.jid) });
        expect(d.action, `${JSON.stringify(raw)}, ${k.name}: ${d.reason}`).not.toBe('allow');
      }
    }
  });

  it('the generator covers numbers, number JIDs and LIDs with devices and mixed case', () => {
    const r = rng(7);
    const seen = Array.from({ length: 400 }, () => spelling(r));
    expect(seen.some((s) => /^\s*\+?1[\s\-.()\u2009]/.test(s))).toBe(true);
    expect(seen.some((s) => /:\d+@s\.whatsapp\.net|:\d+@c\.us/i.test(s))).toBe(true);
    expect(seen.some((s) => /:\d+@lid/i.test(s))).toBe(true);
    expect(seen.some((s) => /@lid/i.test(s) && !/@lid/.test(s))).toBe(true);
  });
});
