import { describe, expect, it } from 'vitest';
import { OPEN_POLICY, decide } from '../../src/policy/policy.js';
import type { Policy, PolicyAction, PolicyRule, SendKind, SendRequest } from '../../src/policy/policy.js';

const ALICE = '15550001111@s.whatsapp.net';
const BOB = '15550002222@s.whatsapp.net';
const CAROL = '15550003333@s.whatsapp.net';
const OPS = '15559990000@s.whatsapp.net';
const ALICE_LID = '111111111111111@lid';
const UNKNOWN_LID = '999999999999999@lid';
const GROUP = '120363025246125888@g.us';

function policy(p: Partial<Policy> = {}): Policy {
  return { default: 'allow', rules: [], allowTo: {}, operators: [], ...p };
}

function req(r: Partial<SendRequest> = {}): SendRequest {
  return { account: 'main', peer: ALICE, peerPhoneJid: null, chatType: 'direct', kind: 'message', ...r };
}

describe('decide: defaults', () => {
  it('the open policy allows everything but alerts', () => {
    for (const kind of ['message', 'reaction', 'receipt', 'presence'] satisfies SendKind[]) {
      expect(decide(OPEN_POLICY, req({ kind }))).toEqual({ action: 'allow', rule: 'default', reason: 'allow by default' });
    }
    expect(decide(OPEN_POLICY, req({ peer: GROUP, chatType: 'group' })).action).toBe('allow');
  });

  it.each([
    { default: 'allow', action: 'allow' },
    { default: 'deny', action: 'deny' },
  ] as const)('no rule matching: default $default', ({ default: d, action }) => {
    const p = policy({ default: d, rules: [{ action: 'hold', match: { account: 'other' } }] });
    expect(decide(p, req())).toEqual({ action, rule: 'default', reason: `${action} by default` });
  });
});

describe('decide: alerts go only to operators', () => {
  const p = policy({ operators: [OPS] });

  it.each([
    { name: 'a non-operator', r: req({ kind: 'alert', peer: ALICE }), action: 'deny', rule: 'operators' },
    { name: 'a group', r: req({ kind: 'alert', peer: GROUP, chatType: 'group' }), action: 'deny', rule: 'operators' },
    { name: 'an unknown LID', r: req({ kind: 'alert', peer: UNKNOWN_LID }), action: 'deny', rule: 'operators' },
    { name: 'an operator', r: req({ kind: 'alert', peer: OPS }), action: 'allow', rule: 'default' },
    { name: 'an operator by LID', r: req({ kind: 'alert', peer: ALICE_LID, peerPhoneJid: OPS }), action: 'allow', rule: 'default' },
    { name: 'an operator, kind message', r: req({ kind: 'message', peer: OPS }), action: 'allow', rule: 'default' },
    { name: 'a non-operator, kind message', r: req({ kind: 'message', peer: ALICE }), action: 'allow', rule: 'default' },
  ])('$name -> $action ($rule)', ({ r, action, rule }) => {
    const d = decide(p, r);
    expect(d.action).toBe(action);
    expect(d.rule).toBe(rule);
  });

  it('the refusal names the peer', () => {
    expect(decide(p, req({ kind: 'alert', peer: BOB })).reason).toBe(`alerts go only to operators; ${BOB} is not one`);
  });

  it('with no operators configured every alert is denied', () => {
    expect(decide(OPEN_POLICY, req({ kind: 'alert', peer: OPS })).rule).toBe('operators');
  });

  it('no rule can let an alert reach a non-operator', () => {
    const allowAll = policy({ operators: [OPS], rules: [{ action: 'allow', match: { kind: 'alert' } }, { action: 'allow', match: {} }] });
    expect(decide(allowAll, req({ kind: 'alert', peer: ALICE }))).toMatchObject({ action: 'deny', rule: 'operators' });
  });

  it('an alert to an operator still meets the rules and the default', () => {
    expect(decide(policy({ operators: [OPS], default: 'deny' }), req({ kind: 'alert', peer: OPS }))).toMatchObject({ action: 'deny', rule: 'default' });
    const holdAlerts = policy({ operators: [OPS], rules: [{ action: 'hold', match: { kind: 'alert' }, name: 'hold-alerts' }] });
    expect(decide(holdAlerts, req({ kind: 'alert', peer: OPS }))).toMatchObject({ action: 'hold', rule: 'hold-alerts' });
  });
});

describe('decide: allowTo overrides everything', () => {
  const p = policy({
    allowTo: { main: [ALICE, GROUP] },
    rules: [{ action: 'allow', match: { peer: [BOB, CAROL] }, name: 'allow-bob' }],
    operators: [OPS],
  });

  it.each([
    { name: 'a listed number', r: req({ peer: ALICE }), action: 'allow', rule: 'default' },
    { name: 'a listed group', r: req({ peer: GROUP, chatType: 'group' }), action: 'allow', rule: 'default' },
    { name: 'an unlisted number, even with an allow rule for it', r: req({ peer: BOB }), action: 'deny', rule: 'allowTo' },
    { name: 'an unlisted operator', r: req({ peer: OPS, kind: 'alert' }), action: 'deny', rule: 'allowTo' },
    { name: 'a LID whose number is listed', r: req({ peer: ALICE_LID, peerPhoneJid: ALICE }), action: 'allow', rule: 'default' },
    { name: 'a LID whose number is not listed', r: req({ peer: ALICE_LID, peerPhoneJid: BOB }), action: 'deny', rule: 'allowTo' },
    { name: 'a LID whose number is unknown', r: req({ peer: UNKNOWN_LID, peerPhoneJid: null }), action: 'deny', rule: 'allowTo' },
    { name: 'another account without allowTo', r: req({ account: 'other', peer: BOB }), action: 'allow', rule: 'allow-bob' },
    { name: 'another account, unlisted peer', r: req({ account: 'other', peer: CAROL }), action: 'allow', rule: 'allow-bob' },
  ])('$name -> $action ($rule)', ({ r, action, rule }) => {
    const d = decide(p, r);
    expect(d.action).toBe(action);
    expect(d.rule).toBe(rule);
  });

  it('the refusal names the peer and the account', () => {
    expect(decide(p, req({ peer: BOB })).reason).toBe(`${BOB} is not in allowTo of account main`);
  });

  it('a LID whose number is not known is refused with a reason saying so', () => {
    const d = decide(p, req({ peer: UNKNOWN_LID, peerPhoneJid: null }));
    expect(d).toMatchObject({ action: 'deny', rule: 'allowTo' });
    expect(d.reason).toContain(UNKNOWN_LID);
    expect(d.reason).toMatch(/LID whose number is not known/);
  });

  it('a LID whose number is known but not listed gets no LID note', () => {
    expect(decide(p, req({ peer: ALICE_LID, peerPhoneJid: BOB })).reason).not.toMatch(/LID/);
  });

  it('an empty allowTo denies every recipient', () => {
    const none = policy({ allowTo: { main: [] } });
    for (const peer of [ALICE, GROUP, ALICE_LID]) expect(decide(none, req({ peer })).rule).toBe('allowTo');
  });

  it('a listed recipient still meets the rules: allowTo only narrows', () => {
    const narrowed = policy({ allowTo: { main: [ALICE] }, rules: [{ action: 'deny', match: { peer: [ALICE] }, name: 'no-alice' }] });
    expect(decide(narrowed, req({ peer: ALICE }))).toEqual({ action: 'deny', rule: 'no-alice', reason: 'deny by no-alice' });
    expect(decide(policy({ allowTo: { main: [ALICE] }, default: 'deny' }), req({ peer: ALICE })).rule).toBe('default');
  });

  it('the operators check comes before allowTo for alerts', () => {
    expect(decide(p, req({ kind: 'alert', peer: BOB })).rule).toBe('operators');
  });

  // Regression (fixed): allowTo is a plain object looked up with `policy.allowTo[req.account]`, so an account
  // whose id is an Object.prototype member ("constructor", "toString", "valueOf"... all valid under
  // ACCOUNT_ID_PATTERN) finds a function there and decide() throws "allow.includes is not a
  // function", even with the open policy. Expected: such an account has no allowTo (Object.hasOwn).
  it.each(['constructor', 'toString', 'valueOf', 'hasOwnProperty'])('an account named %s has no allowTo unless configured', (account) => {
    expect(decide(OPEN_POLICY, req({ account }))).toEqual({ action: 'allow', rule: 'default', reason: 'allow by default' });
  });
});

describe('decide: rules', () => {
  type Case = { name: string; rule: PolicyRule; r: SendRequest; matches: boolean };
  const cases: Case[] = [
    { name: 'empty match matches anything', rule: { action: 'deny', match: {} }, r: req(), matches: true },
    { name: 'account string, same', rule: { action: 'deny', match: { account: 'main' } }, r: req(), matches: true },
    { name: 'account string, other', rule: { action: 'deny', match: { account: 'other' } }, r: req(), matches: false },
    { name: 'account list, contains', rule: { action: 'deny', match: { account: ['a', 'main'] } }, r: req(), matches: true },
    { name: 'account list, not contains', rule: { action: 'deny', match: { account: ['a', 'b'] } }, r: req(), matches: false },
    { name: 'account list, empty', rule: { action: 'deny', match: { account: [] } }, r: req(), matches: false },
    { name: 'account is exact, not a prefix', rule: { action: 'deny', match: { account: 'mai' } }, r: req(), matches: false },
    { name: 'peer list, contains', rule: { action: 'deny', match: { peer: [BOB, ALICE] } }, r: req(), matches: true },
    { name: 'peer list, not contains', rule: { action: 'deny', match: { peer: [BOB] } }, r: req(), matches: false },
    { name: 'peer string', rule: { action: 'deny', match: { peer: ALICE } }, r: req(), matches: true },
    { name: 'peer list, empty', rule: { action: 'deny', match: { peer: [] } }, r: req(), matches: false },
    { name: 'peer by LID', rule: { action: 'deny', match: { peer: [ALICE_LID] } }, r: req({ peer: ALICE_LID }), matches: true },
    {
      name: 'peer by the phone JID of a LID',
      rule: { action: 'deny', match: { peer: [ALICE] } },
      r: req({ peer: ALICE_LID, peerPhoneJid: ALICE }),
      matches: true,
    },
    // A LID whose number is unknown is refused by such a rule instead (test/policy/identity.test.ts).
    { name: 'peer by phone, the LID is another number', rule: { action: 'deny', match: { peer: [ALICE] } }, r: req({ peer: ALICE_LID, peerPhoneJid: BOB }), matches: false },
    { name: 'peer group', rule: { action: 'deny', match: { peer: [GROUP] } }, r: req({ peer: GROUP, chatType: 'group' }), matches: true },
    { name: 'chatType direct, direct', rule: { action: 'deny', match: { chatType: 'direct' } }, r: req(), matches: true },
    { name: 'chatType direct, group', rule: { action: 'deny', match: { chatType: 'direct' } }, r: req({ peer: GROUP, chatType: 'group' }), matches: false },
    { name: 'chatType group, group', rule: { action: 'deny', match: { chatType: 'group' } }, r: req({ peer: GROUP, chatType: 'group' }), matches: true },
    { name: 'chatType group, direct', rule: { action: 'deny', match: { chatType: 'group' } }, r: req(), matches: false },
    { name: 'kind string, same', rule: { action: 'deny', match: { kind: 'reaction' } }, r: req({ kind: 'reaction' }), matches: true },
    { name: 'kind string, other', rule: { action: 'deny', match: { kind: 'reaction' } }, r: req(), matches: false },
    { name: 'kind list, contains', rule: { action: 'deny', match: { kind: ['receipt', 'presence'] } }, r: req({ kind: 'presence' }), matches: true },
    { name: 'kind list, not contains', rule: { action: 'deny', match: { kind: ['receipt', 'presence'] } }, r: req(), matches: false },
    {
      name: 'all fields match',
      rule: { action: 'deny', match: { account: 'main', peer: [ALICE], chatType: 'direct', kind: 'message' } },
      r: req(),
      matches: true,
    },
    {
      name: 'all fields but kind match',
      rule: { action: 'deny', match: { account: 'main', peer: [ALICE], chatType: 'direct', kind: 'reaction' } },
      r: req(),
      matches: false,
    },
    {
      name: 'all fields but account match',
      rule: { action: 'deny', match: { account: 'x', peer: [ALICE], chatType: 'direct', kind: 'message' } },
      r: req(),
      matches: false,
    },
    {
      name: 'all fields but peer match',
      rule: { action: 'deny', match: { account: 'main', peer: [BOB], chatType: 'direct', kind: 'message' } },
      r: req(),
      matches: false,
    },
    {
      name: 'all fields but chatType match',
      rule: { action: 'deny', match: { account: 'main', peer: [ALICE], chatType: 'group', kind: 'message' } },
      r: req(),
      matches: false,
    },
  ];

  it.each(cases)('$name -> matches: $matches', ({ rule, r, matches }) => {
    const d = decide(policy({ default: 'allow', rules: [rule] }), r);
    expect(d).toEqual(matches ? { action: 'deny', rule: 'rules[0]', reason: 'deny by rules[0]' } : { action: 'allow', rule: 'default', reason: 'allow by default' });
  });

  it.each(['allow', 'deny', 'hold'] satisfies PolicyAction[])('a matching rule with action %s decides it', (action) => {
    const d = decide(policy({ default: action === 'allow' ? 'deny' : 'allow', rules: [{ action, match: {} }] }), req());
    expect(d).toEqual({ action, rule: 'rules[0]', reason: `${action} by rules[0]` });
  });

  it('first match wins', () => {
    const rules: PolicyRule[] = [
      { action: 'hold', match: { peer: [BOB] } },
      { action: 'deny', match: { chatType: 'direct' } },
      { action: 'allow', match: { peer: [ALICE] } },
      { action: 'hold', match: {} },
    ];
    const p = policy({ default: 'allow', rules });
    expect(decide(p, req({ peer: BOB }))).toMatchObject({ action: 'hold', rule: 'rules[0]' });
    expect(decide(p, req({ peer: ALICE }))).toMatchObject({ action: 'deny', rule: 'rules[1]' });
    expect(decide(p, req({ peer: GROUP, chatType: 'group' }))).toMatchObject({ action: 'hold', rule: 'rules[3]' });
  });

  it('a rule is named by its name, or by its index among all rules', () => {
    const rules: PolicyRule[] = [
      { action: 'deny', match: { account: 'a' }, name: 'block-a' },
      { action: 'hold', match: { account: 'b' } },
      { action: 'deny', match: { account: 'c' }, name: 'block-c' },
      { action: 'hold', match: { account: 'd' } },
    ];
    const p = policy({ rules });
    expect(decide(p, req({ account: 'a' }))).toEqual({ action: 'deny', rule: 'block-a', reason: 'deny by block-a' });
    expect(decide(p, req({ account: 'b' }))).toEqual({ action: 'hold', rule: 'rules[1]', reason: 'hold by rules[1]' });
    expect(decide(p, req({ account: 'c' }))).toEqual({ action: 'deny', rule: 'block-c', reason: 'deny by block-c' });
    expect(decide(p, req({ account: 'd' }))).toEqual({ action: 'hold', rule: 'rules[3]', reason: 'hold by rules[3]' });
    expect(decide(p, req({ account: 'e' })).rule).toBe('default');
  });

  it('an allow rule lets through what the default denies', () => {
    const p = policy({ default: 'deny', rules: [{ action: 'allow', match: { peer: [ALICE] }, name: 'alice-ok' }] });
    expect(decide(p, req({ peer: ALICE })).action).toBe('allow');
    expect(decide(p, req({ peer: BOB })).action).toBe('deny');
  });

  it('does not modify the policy or the request', () => {
    const p = policy({ allowTo: { main: [ALICE] }, rules: [{ action: 'deny', match: { peer: [BOB] } }], operators: [OPS] });
    const r = req({ peer: ALICE_LID, peerPhoneJid: ALICE });
    const before = JSON.stringify([p, r]);
    decide(p, r);
    expect(JSON.stringify([p, r])).toBe(before);
  });
});

describe('decide: shadow mode (deny direct chats of one account)', () => {
  const p = policy({
    default: 'allow',
    rules: [{ action: 'deny', match: { account: 'shadow', chatType: 'direct' }, name: 'shadow' }],
    operators: [OPS],
  });

  it.each([
    { name: 'direct chat on the shadow account', r: req({ account: 'shadow' }), action: 'deny', rule: 'shadow' },
    { name: 'direct chat by LID on the shadow account', r: req({ account: 'shadow', peer: ALICE_LID }), action: 'deny', rule: 'shadow' },
    { name: 'reaction in a direct chat on the shadow account', r: req({ account: 'shadow', kind: 'reaction' }), action: 'deny', rule: 'shadow' },
    { name: 'group on the shadow account', r: req({ account: 'shadow', peer: GROUP, chatType: 'group' }), action: 'allow', rule: 'default' },
    { name: 'direct chat on another account', r: req({ account: 'live' }), action: 'allow', rule: 'default' },
    { name: 'group on another account', r: req({ account: 'live', peer: GROUP, chatType: 'group' }), action: 'allow', rule: 'default' },
  ])('$name -> $action', ({ r, action, rule }) => {
    const d = decide(p, r);
    expect(d.action).toBe(action);
    expect(d.rule).toBe(rule);
  });
});

// A reply to an inbound status update, broadcast-list message or channel post would go to a JID
// the recipient normaliser refuses; the policy refuses it too, so a row or a policy built without
// that normaliser cannot pass an allow rule for direct chats (or an open default) by accident.
describe('decide: status, broadcast lists and channels are never sent to', () => {
  const allowDirect = policy({
    default: 'allow',
    rules: [{ action: 'allow', match: { chatType: 'direct' }, name: 'direct-ok' }],
    allowTo: { listed: ['status@broadcast', '120363000000000000@newsletter'] },
    operators: ['status@broadcast'],
  });

  it.each([
    { peer: 'status@broadcast', account: 'main', kind: 'message' },
    { peer: 'STATUS@broadcast', account: 'main', kind: 'message' },
    { peer: '1600000000@broadcast', account: 'main', kind: 'message' },
    { peer: '120363000000000000@newsletter', account: 'main', kind: 'message' },
    { peer: 'status@broadcast', account: 'listed', kind: 'message' },
    { peer: 'status@broadcast', account: 'main', kind: 'alert' },
    { peer: 'status@broadcast', account: 'main', kind: 'reaction' },
  ] satisfies Array<{ peer: string; account: string; kind: SendKind }>)('$peer from $account ($kind) -> deny', ({ peer, account, kind }) => {
    expect(decide(allowDirect, req({ peer, account, kind, chatType: 'direct' }))).toEqual({
      action: 'deny',
      rule: 'recipient',
      reason: `${peer} is a status, broadcast list or channel; nothing is sent there`,
    });
  });

  it('a person and a group still pass the same policy', () => {
    expect(decide(allowDirect, req({ peer: ALICE })).rule).toBe('direct-ok');
    expect(decide(allowDirect, req({ peer: GROUP, chatType: 'group' })).rule).toBe('default');
  });
});

describe('decide: rule kinds for messages beyond text', () => {
  const deny = (kind: PolicyRule['match']['kind']): Policy => policy({ rules: [{ action: 'deny', match: { kind } }] });
  const MEDIA: SendKind[] = ['image', 'video', 'audio', 'document', 'sticker'];
  const CHAT: SendKind[] = ['message', ...MEDIA, 'location', 'contact', 'reaction', 'edit', 'delete'];

  it('a rule for "message" (written before media existed) covers every kind a person sees in a chat', () => {
    for (const kind of CHAT) expect(decide(deny('message'), req({ kind })).action, kind).toBe('deny');
    for (const kind of ['receipt', 'presence', 'alert'] satisfies SendKind[]) expect(decide(deny('message'), req({ kind, peer: OPS })).rule, kind).not.toBe('rules[0]');
  });

  it('"text" is text alone, "media" the five media kinds, a row kind only itself', () => {
    expect(CHAT.filter((kind) => decide(deny('text'), req({ kind })).action === 'deny')).toEqual(['message']);
    expect(CHAT.filter((kind) => decide(deny('media'), req({ kind })).action === 'deny')).toEqual(MEDIA);
    expect(CHAT.filter((kind) => decide(deny('document'), req({ kind })).action === 'deny')).toEqual(['document']);
    expect(CHAT.filter((kind) => decide(deny(['reaction', 'delete']), req({ kind })).action === 'deny')).toEqual(['reaction', 'delete']);
  });

  it('a media kind to a group meets a group rule and the group allowlist like a text', () => {
    const p = policy({ rules: [{ action: 'deny', match: { chatType: 'group', kind: 'media' } }], allowTo: { main: [GROUP, ALICE] } });
    expect(decide(p, req({ peer: GROUP, chatType: 'group', kind: 'image' })).rule).toBe('rules[0]');
    expect(decide(p, req({ peer: GROUP, chatType: 'group', kind: 'message' })).action).toBe('allow');
    expect(decide(p, req({ peer: BOB, kind: 'image' })).rule).toBe('allowTo');
  });
});
