// The gate resolves a peer's other identity before deciding (what the account learnt, else the
// open connection, within RESOLVE_TIMEOUT_MS) and refuses when a rule needs the identity that
// stays unknown: at enqueue, at send time, and for rows replayed under a new policy (issue 13).
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventBus } from '../../src/events/bus.js';
import { RESOLVE_TIMEOUT_MS } from '../../src/outbox/peer-identity.js';
import { SendGate, type GateAccount, type GateSettings } from '../../src/outbox/send-gate.js';
import { OutboxStore } from '../../src/outbox/store.js';
import { DEFAULT_PACING } from '../../src/outbox/token-bucket.js';
import { OPEN_POLICY, type Policy } from '../../src/policy/policy.js';
import { closeStateDb, openStateDb, type StateDb } from '../../src/store/db.js';
import type { WaEvent, WaSender } from '../../src/wa/types.js';
import { tmpDirs } from '../helpers/tmp.js';

const NOW = 1_700_000_000_000;
const NUMBER = '15550004444@s.whatsapp.net';
const LID = '177290488036108@lid';
const OTHER_LID = '111111111111111@lid';
const ALLOWED = '15550001111@s.whatsapp.net';
const LID_SPELLINGS = ['177290488036108@lid', '177290488036108:2@lid', '177290488036108@LID', ' 177290488036108_1@lid '];

const tmp = tmpDirs(afterEach, 'wa-gate-id-');

class Sender implements WaSender {
  readonly sent: string[] = [];
  readonly readReceipts: string[] = [];
  async send(jid: string): Promise<void> {
    this.sent.push(jid);
  }
  async requestMediaReupload(): Promise<{ directPath: string; url: string }> {
    throw new Error('not used here');
  }
  async sendReadReceipt(chat: string): Promise<void> {
    this.readReceipts.push(chat);
  }
}

/** An account whose open connection answers identity questions as told, and records them. */
class Account implements GateAccount {
  connection: Sender | null = null;
  resolver: { resolveIdentity(jid: string): Promise<string | null> } | null = null;
  readonly asked: string[] = [];
  readonly answers = new Map<string, string>();
  answer: (jid: string) => Promise<string | null> = async (jid) => this.answers.get(jid) ?? null;
  constructor(readonly bus: EventBus) {}
  onConnectionEvent(_listener: (e: WaEvent) => void): () => void {
    return () => {};
  }
  open(): Sender {
    this.connection = new Sender();
    this.resolver = { resolveIdentity: (jid) => (this.asked.push(jid), this.answer(jid)) };
    this.bus.publish({ type: 'account.state', account: 'main', state: 'open' });
    return this.connection;
  }
}

let db: StateDb;
let bus: EventBus;
let acct: Account;
/** Mappings the account has learnt (both directions), as the auth store would answer them. */
let learnt: Map<string, string>;
const gates: SendGate[] = [];

function settings(policy: Policy): GateSettings {
  return { policy, pacing: () => ({ ...DEFAULT_PACING, enabled: false }), ttlMs: 600_000, maxAttempts: 5, retry: { initialMs: 1000, maxMs: 4000 }, settleMs: 0 };
}
function makeGate(policy: Policy, extra: Partial<ConstructorParameters<typeof SendGate>[0]> = {}): SendGate {
  const gate = new SendGate({
    store: new OutboxStore(db),
    bus,
    log: pino({ level: 'silent' }),
    accounts: (id) => (id === 'main' ? acct : undefined),
    phoneJidForLid: (_a, jid) => learnt.get(jid) ?? null,
    lidJidForPhone: (_a, jid) => learnt.get(jid) ?? null,
    settings: settings(policy),
    ...extra,
  });
  void gate.start();
  gates.push(gate);
  return gate;
}
const rules = (...r: Policy['rules']): Policy => ({ ...OPEN_POLICY, rules: r });
const denyNumber = rules({ action: 'deny', name: 'blocked', match: { peer: NUMBER } });
const denyLid = rules({ action: 'deny', name: 'blocked-lid', match: { peer: LID } });

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'], now: NOW });
  db = openStateDb(tmp());
  bus = new EventBus();
  acct = new Account(bus);
  learnt = new Map();
});
afterEach(async () => {
  for (const g of gates.splice(0)) await g.stop();
  closeStateDb(db);
  vi.useRealTimers();
});

describe('at enqueue: a LID of a number a deny rule names', () => {
  // Before: every spelling here was queued and sent (the rule matched the number only).
  it.each(LID_SPELLINGS)('%j, number unknown to the account and the server: denied, saying why; nothing sent', async (to) => {
    const gate = makeGate(denyNumber);
    const conn = acct.open();
    const { row } = await gate.enqueue({ account: 'main', to, text: 'hi' });
    await flush();
    expect(row).toMatchObject({ to: LID, state: 'denied' });
    expect(row.reason).toBe(`${LID}: its phone number could not be resolved, so blocked (which names numbers) cannot be checked; refused`);
    expect(acct.asked).toEqual([LID]);
    expect(conn.sent).toEqual([]);
    expect((gate.store as OutboxStore).audit()[0]).toMatchObject({ stage: 'enqueue', decision: 'deny', rule: 'blocked', recipient: LID });
  });

  it('the connection\'s answer is used: denied by the rule itself', async () => {
    const gate = makeGate(denyNumber);
    acct.open();
    acct.answers.set(LID, '15550004444:0@s.whatsapp.net');
    expect((await gate.enqueue({ account: 'main', to: LID, text: 'hi' })).row).toMatchObject({ state: 'denied', reason: 'deny by blocked' });
  });

  it('a mapping the account has learnt is used without asking the connection', async () => {
    const gate = makeGate(denyNumber);
    acct.open();
    learnt.set(LID, NUMBER);
    expect((await gate.enqueue({ account: 'main', to: LID, text: 'hi' })).row).toMatchObject({ state: 'denied', reason: 'deny by blocked' });
    expect(acct.asked).toEqual([]);
  });

  it('with no open connection there is nobody to ask: denied', async () => {
    const gate = makeGate(denyNumber);
    expect((await gate.enqueue({ account: 'main', to: LID, text: 'hi' })).row.state).toBe('denied');
  });

  it(`a connection that never answers: the enqueue returns after ${RESOLVE_TIMEOUT_MS} ms, denied`, async () => {
    const gate = makeGate(denyNumber);
    acct.open();
    acct.answer = () => new Promise(() => {});
    let done = false;
    const pending = gate.enqueue({ account: 'main', to: LID, text: 'hi' }).finally(() => (done = true));
    await flush();
    await vi.advanceTimersByTimeAsync(RESOLVE_TIMEOUT_MS - 1);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await flush();
    expect((await pending).row.state).toBe('denied');
  });

  it.each([
    { name: 'fails', answer: () => Promise.reject(new Error('query timed out')) },
    { name: 'answers a LID for a LID', answer: async () => OTHER_LID },
    { name: 'answers something that is no JID', answer: async () => 'not a jid' },
    { name: 'answers a group', answer: async () => '120363025246125888@g.us' },
  ])('a connection that $name counts as no answer: denied', async ({ answer }) => {
    const gate = makeGate(denyNumber);
    acct.open();
    acct.answer = answer;
    expect((await gate.enqueue({ account: 'main', to: LID, text: 'hi' })).row.reason).toMatch(/could not be resolved/);
  });
});

describe('at enqueue: spellings that only look like the person', () => {
  it.each(['\u202d+15550004444\u202c', '\uff11\uff15\uff15\uff15\uff10\uff10\uff10\uff14\uff14\uff14\uff14', '177290488036108\u200b@lid', '1555000444412345'])(
    '%j is a 400 naming the field; nothing is stored',
    async (to) => {
      const gate = makeGate(denyNumber);
      acct.open();
      await expect(gate.enqueue({ account: 'main', to, text: 'hi' })).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/^to: /) });
      expect((gate.store as OutboxStore).list()).toEqual([]);
    },
  );
});

describe('at enqueue: a number and a rule naming a LID', () => {
  it('the number\'s LID is asked of the connection: denied by the LID rule', async () => {
    const gate = makeGate(denyLid);
    const conn = acct.open();
    acct.answers.set(NUMBER, LID);
    expect((await gate.enqueue({ account: 'main', to: '+1 555 000 4444', text: 'hi' })).row).toMatchObject({ state: 'denied', reason: 'deny by blocked-lid' });
    expect(acct.asked).toEqual([NUMBER]);
    await flush();
    expect(conn.sent).toEqual([]);
  });

  it('a learnt LID is used without asking; an unresolvable one is refused', async () => {
    const gate = makeGate(denyLid);
    acct.open();
    learnt.set(NUMBER, LID);
    expect((await gate.enqueue({ account: 'main', to: NUMBER, text: 'a' })).row.reason).toBe('deny by blocked-lid');
    expect(acct.asked).toEqual([]);
    learnt.clear();
    expect((await gate.enqueue({ account: 'main', to: NUMBER, text: 'b' })).row.reason).toBe(
      `${NUMBER}: its LID could not be resolved, so blocked-lid (which names LIDs) cannot be checked; refused`,
    );
  });

  it('another person\'s number whose LID resolves to another LID is sent', async () => {
    const gate = makeGate(denyLid);
    const conn = acct.open();
    acct.answers.set(ALLOWED, OTHER_LID);
    expect((await gate.enqueue({ account: 'main', to: ALLOWED, text: 'hi' })).row.state).toBe('queued');
    await flush();
    expect(conn.sent).toEqual([ALLOWED]);
  });
});

describe('accounts whose rules name no peer', () => {
  it('a LID and a number are sent without any question to the connection', async () => {
    const gate = makeGate(rules({ action: 'deny', match: { account: 'other', peer: NUMBER } }, { action: 'deny', match: { kind: 'reaction' } }));
    const conn = acct.open();
    await gate.enqueue({ account: 'main', to: LID, text: 'a' });
    await gate.enqueue({ account: 'main', to: NUMBER, text: 'b' });
    await flush();
    expect(conn.sent).toEqual([LID, NUMBER]);
    expect(acct.asked).toEqual([]);
  });

  it('a number on an account whose rules name numbers only is decided without a question', async () => {
    const gate = makeGate(denyNumber);
    acct.open();
    expect((await gate.enqueue({ account: 'main', to: NUMBER, text: 'a' })).row.reason).toBe('deny by blocked');
    expect((await gate.enqueue({ account: 'main', to: ALLOWED, text: 'b' })).row.state).toBe('queued');
    expect(acct.asked).toEqual([]);
  });
});

describe('at send time', () => {
  /** A row to the LID queued while the account is closed, under a policy without the rule. */
  async function queuedRow(gate: SendGate): Promise<number> {
    const { row } = await gate.enqueue({ account: 'main', to: LID, text: 'written before the rule' });
    expect(row.state).toBe('queued');
    return row.id;
  }

  it('a rule added by a reload refuses a queued row whose number cannot be resolved; nothing is sent', async () => {
    const gate = makeGate(OPEN_POLICY);
    const id = await queuedRow(gate);
    gate.updateSettings(settings(denyNumber));
    const conn = acct.open();
    await flush();
    expect((gate.store as OutboxStore).get(id)).toMatchObject({ state: 'denied', reason: expect.stringMatching(/its phone number could not be resolved, so blocked/) });
    expect(conn.sent).toEqual([]);
    expect(acct.asked).toEqual([LID]);
    expect((gate.store as OutboxStore).audit()[0]).toMatchObject({ stage: 'send', decision: 'deny', rule: 'blocked' });
  });

  it('after a restart with the rule (a new gate on the same outbox) the replayed row is refused too', async () => {
    const first = makeGate(OPEN_POLICY);
    const id = await queuedRow(first);
    await first.stop();
    const gate = makeGate(denyNumber);
    const conn = acct.open();
    await flush();
    expect((gate.store as OutboxStore).get(id)?.state).toBe('denied');
    expect(conn.sent).toEqual([]);
  });

  it('the connection\'s answer at send time decides: the blocked number is denied by its rule, another number is sent', async () => {
    const gate = makeGate(OPEN_POLICY);
    const blocked = await queuedRow(gate);
    const { row: other } = await gate.enqueue({ account: 'main', to: OTHER_LID, text: 'to someone else' });
    gate.updateSettings(settings(denyNumber));
    acct.answers.set(LID, NUMBER);
    acct.answers.set(OTHER_LID, ALLOWED);
    const conn = acct.open();
    await flush();
    expect((gate.store as OutboxStore).get(blocked)).toMatchObject({ state: 'denied', reason: 'deny by blocked' });
    expect((gate.store as OutboxStore).get(other.id)?.state).toBe('sending');
    expect(conn.sent).toEqual([OTHER_LID]);
  });

  it('an approved held row whose identity cannot be resolved any more is denied, not sent', async () => {
    const gate = makeGate(rules({ action: 'hold', name: 'review', match: { peer: NUMBER } }));
    learnt.set(LID, NUMBER);
    const { row } = await gate.enqueue({ account: 'main', to: LID, text: 'draft' });
    expect(row.state).toBe('held');
    learnt.clear();
    await gate.approve(row.id, { client: 'test' });
    const conn = acct.open();
    await flush();
    expect((gate.store as OutboxStore).get(row.id)).toMatchObject({ state: 'denied', reason: expect.stringMatching(/could not be resolved, so review/) });
    expect(conn.sent).toEqual([]);
  });
});

describe('read receipts', () => {
  it('a LID chat whose number cannot be resolved gets no read receipt on an account with a rule naming numbers', async () => {
    const gate = makeGate(rules({ action: 'deny', name: 'no-ticks', match: { peer: NUMBER, kind: 'receipt' } }));
    const conn = acct.open();
    const out = await gate.sendReadReceipts({ account: 'main', chat: '177290488036108:2@lid', messages: [{ id: 'X' }] });
    expect(out).toMatchObject({ sent: false, decision: { action: 'deny', rule: 'no-ticks' } });
    expect(conn.readReceipts).toEqual([]);
  });
});

describe('mappings read from a store that answers later (a cluster)', () => {
  // In a cluster the daemon that accepts a send may not own the account: no open connection to
  // ask, and the learnt mappings are in PostgreSQL (read asynchronously).
  it('with no connection, the stored mapping decides: a LID whose number a rule denies is denied by that rule, another is allowed', async () => {
    const stored = new Map([[LID, NUMBER]]);
    const asked: string[] = [];
    const gate = makeGate(denyNumber, { storedIdentities: () => ({ resolveIdentity: async (jid) => (asked.push(jid), stored.get(jid) ?? null) }) });
    const { row } = await gate.enqueue({ account: 'main', to: LID, text: 'hi' });
    expect(row).toMatchObject({ state: 'denied', reason: expect.stringMatching(/blocked/) });
    expect(row.reason).not.toMatch(/could not be resolved/);
    expect(asked).toEqual([LID]);
  });

  it('without it the same send is refused as unresolved (fail closed), so the stored lookup is what decided above', async () => {
    const gate = makeGate(denyNumber);
    const { row } = await gate.enqueue({ account: 'main', to: LID, text: 'hi' });
    expect(row).toMatchObject({ state: 'denied', reason: expect.stringMatching(/could not be resolved/) });
  });
});
