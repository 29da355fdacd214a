// The chaos and demo checker, in-process: it must report what went wrong, not only pass.
import { describe, expect, it } from 'vitest';
import {
  type AcceptedSend,
  type ConsumerDelivery,
  type DeliveryWorld,
  type InboxRowJson,
  type InboxWorld,
  type PeerSent,
  type ReceivedMessage,
  checkDeliveries,
  checkInbox,
  checkOwnership,
} from '../../scripts/delivery-check.mjs';

const OPERATOR = '15550009999';
const world: DeliveryWorld = {
  accounts: [
    { id: 'a0', phone: '15550000000', allowTo: ['15550001000', OPERATOR] }, // alert sink, allowTo
    { id: 'a1', phone: '15550000001' }, // may write to anyone not forbidden
    { id: 'a2', phone: '15550000002', shadow: true }, // shadow mode: no direct messages
  ],
  operators: [OPERATOR],
  forbidden: ['15550004444'],
};
const accepted: AcceptedSend[] = [
  { account: 'a0', to: '15550001000', messageId: 'ID1', text: 'm1' },
  { account: 'a1', to: '15550001001', messageId: 'ID2', text: 'm2' },
];
const msg = (id: string, from: string, text: string, copies = 1): ReceivedMessage => ({ id, from, text, copies });
const ALERT = '[wa-supervisor] CRITICAL (a2): account a2 was replaced by another session (440)';
const clean = (): Record<string, ReceivedMessage[]> => ({
  '15550001000': [msg('ID1', '15550000000', 'm1')],
  '15550001001': [msg('ID2', '15550000001', 'm2')],
  [OPERATOR]: [msg('AL1', '15550000000', ALERT)],
});

describe('checkDeliveries', () => {
  it('a clean world: everything delivered once, the alert only at the operator, nothing refused reached anyone', () => {
    const r = checkDeliveries(world, accepted, clean());
    expect(r).toMatchObject({ sent: 2, delivered: 2, lost: 0, peerDuplicates: 0, wireDuplicates: 0, alertsToOperators: 1, alertsToPeers: 0, policyViolations: 0, unexpected: 0 });
    expect(r.findings).toEqual([]);
  });

  it('one alert at a peer and one message at a refused peer: it reports both', () => {
    const received = clean();
    received['15550001001']!.push(msg('AL2', '15550000000', ALERT)); // an alert reached a customer
    received['15550007777'] = [msg('X1', '15550000000', 'm9')]; // a0 wrote to a number not on its allowTo
    const r = checkDeliveries(world, accepted, received);
    expect(r).toMatchObject({ alertsToPeers: 1, policyViolations: 1, lost: 0, alertsToOperators: 1 });
    expect(r.findings.map((f) => [f.kind, f.peer])).toEqual([
      ['alertToPeer', '15550001001'],
      ['policyViolation', '15550007777'],
    ]);
    expect(r.findings[1]!.reason).toContain('not in allowTo of a0');
  });

  it('each refusal counts: a forbidden number, and a shadow account writing to anyone', () => {
    const received = clean();
    received['15550004444'] = [msg('X2', '15550000001', 'hi')];
    received['15550001002'] = [msg('X3', '15550000002', 'a shadow reply')];
    const r = checkDeliveries(world, accepted, received);
    expect(r.policyViolations).toBe(2);
    expect(r.findings.map((f) => f.reason)).toEqual(['a policy rule forbids 15550004444', 'a2 is in shadow mode']);
  });

  it('keeps the two kinds of duplicate apart: same id again is a wire duplicate, a new id for the same message is a peer duplicate', () => {
    const received = clean();
    received['15550001000'] = [msg('ID1', '15550000000', 'm1', 3)]; // two extra wire copies, shown once
    received['15550001001']!.push(msg('ID2-again', '15550000001', 'm2')); // re-sent under a new id: shown twice
    const r = checkDeliveries(world, accepted, received);
    expect(r).toMatchObject({ wireDuplicates: 2, peerDuplicates: 1, lost: 0, delivered: 2 });
  });

  it('a lost message, and a message nobody asked for, are reported', () => {
    const received = clean();
    received['15550001001'] = [msg('Z', '15550000001', 'made up')];
    const r = checkDeliveries(world, accepted, received);
    expect(r).toMatchObject({ lost: 1, delivered: 1, unexpected: 1 });
  });
});

describe('checkInbox', () => {
  const inboxWorld: InboxWorld = {
    accounts: [
      { id: 'a0', phone: '15550000000', allowFrom: ['15550001000'] }, // others are stored as ignored
      { id: 'a1', phone: '15550000001' },
    ],
  };
  const sent: PeerSent[] = [
    { from: '15550001000', to: '15550000000', id: 'IN1', text: 'one', status: 'delivered' },
    { from: '15550001001', to: '15550000000', id: 'IN2', text: 'not on allowFrom', status: 'delivered' },
    { from: '15550001002', to: '15550000001', id: 'IN3', text: 'three', status: 'read' },
    { from: '15550001002', to: '15550000001', id: 'IN4', text: 'four', status: 'delivered' },
  ];
  const row = (cursor: number, account: string, peer: string, id: string, status: InboxRowJson['status'] = 'ok', chat = `${peer}@s.whatsapp.net`): InboxRowJson => ({
    cursor: String(cursor),
    id,
    account,
    chat,
    from: chat,
    status,
  });
  const cleanInbox = (): InboxRowJson[] => [
    row(1, 'a0', '15550001000', 'IN1'),
    row(2, 'a0', '15550001001', 'IN2', 'ignored'),
    row(3, 'a1', '15550001002', 'IN3'),
    row(4, 'a1', '15550001002', 'IN4'),
  ];
  const handed = (r: InboxRowJson, connection: number, committed: number): ConsumerDelivery => ({ ...r, connection, committed: String(committed) });
  // Connection 1 reads 1 and 3, acks 3 and is cut; connection 2 resumes after 3 with 4.
  const cleanDeliveries = (inbox: InboxRowJson[]): ConsumerDelivery[] => [handed(inbox[0]!, 1, 0), handed(inbox[2]!, 1, 0), handed(inbox[3]!, 2, 3)];

  it('a clean run: everything stored once, the stranger ignored, the consumer handed every readable row once after its acks', () => {
    const inbox = cleanInbox();
    const r = checkInbox(inboxWorld, sent, inbox, { deliveries: cleanDeliveries(inbox) });
    expect(r).toMatchObject({
      inboundSent: 4,
      inboundStored: 4,
      inboundLost: 0,
      inboundLostReceipted: 0,
      inboundDuplicates: 0,
      inboundIgnored: 1,
      inboundWrongStatus: 0,
      inboxUnexpected: 0,
      consumerReceived: 3,
      consumerMissed: 0,
      consumerDuplicatesAfterAck: 0,
      consumerGaps: 0,
      consumerIgnored: 0,
    });
    expect(r.findings).toEqual([]);
  });

  it('a lost message, a duplicated one and a consumer duplicate after ack: it reports each', () => {
    const inbox = cleanInbox().filter((r) => r.id !== 'IN4'); // IN4 receipted, never stored
    inbox.push(row(5, 'a1', '15550001002', 'IN3', 'ok', '123456789012345@lid')); // IN3 again, under its LID
    const deliveries: ConsumerDelivery[] = [
      handed(inbox[0]!, 1, 0),
      handed(inbox[2]!, 1, 0),
      handed(inbox[2]!, 2, 3), // cursor 3 again after 3 was acknowledged
      handed(inbox[3]!, 2, 3),
    ];
    const r = checkInbox(inboxWorld, sent, inbox, { deliveries });
    expect(r).toMatchObject({ inboundSent: 4, inboundLost: 1, inboundLostReceipted: 1, inboundDuplicates: 1, consumerDuplicatesAfterAck: 1, consumerMissed: 0 });
    expect(r.findings.map((f) => [f.kind, f.id])).toEqual([
      ['inboundDuplicate', 'IN3'],
      ['inboundLost', 'IN4'],
      ['consumerDuplicateAfterAck', 'IN3'],
    ]);
    expect(r.findings[0]!.reason).toContain('123456789012345@lid');
    expect(r.findings[1]!.reason).toContain('receipted');
  });

  it('two rows of one message in the same chat are a duplicate too; a lost message still queued is lost but not receipted', () => {
    const inbox = [...cleanInbox().filter((r) => r.id !== 'IN4'), row(5, 'a0', '15550001000', 'IN1')];
    const queued = sent.map((s) => (s.id === 'IN4' ? { ...s, status: 'queued' as const } : s));
    const r = checkInbox(inboxWorld, queued, inbox);
    expect(r).toMatchObject({ inboundLost: 1, inboundLostReceipted: 0, inboundDuplicates: 1 });
    expect(r.consumerMissed).toBeUndefined();
  });

  it('a consumer that was never handed a readable row, skipped one on a connection, or got an ignored one: each is reported', () => {
    const inbox = cleanInbox();
    // Connection 1 reads 1 then jumps to 4 (3 skipped, never handed at all), and is handed the ignored row 2.
    const deliveries = [handed(inbox[0]!, 1, 0), handed(inbox[3]!, 1, 0), handed(inbox[1]!, 2, 0)];
    const r = checkInbox(inboxWorld, sent, inbox, { deliveries });
    expect(r).toMatchObject({ consumerMissed: 1, consumerGaps: 1, consumerIgnored: 1, consumerDuplicatesAfterAck: 0 });
    expect(r.findings.filter((f) => f.kind === 'consumerMissed').map((f) => f.id)).toEqual(['IN3']);
  });

  it('allowFrom the wrong way round is a wrong status; unacknowledged rows handed again after a reconnect are allowed, and counted', () => {
    const inbox = cleanInbox().map((r) => (r.id === 'IN2' ? { ...r, status: 'ok' as const } : r.id === 'IN1' ? { ...r, status: 'ignored' as const } : r));
    const r = checkInbox(inboxWorld, sent, inbox);
    expect(r.inboundWrongStatus).toBe(2);
    const clean = cleanInbox();
    const again = [handed(clean[0]!, 1, 0), handed(clean[2]!, 1, 0), handed(clean[2]!, 2, 1), handed(clean[3]!, 2, 1)]; // only 1 was acked
    expect(checkInbox(inboxWorld, sent, clean, { deliveries: again })).toMatchObject({ consumerRedelivered: 1, consumerDuplicatesAfterAck: 0, consumerMissed: 0, consumerGaps: 0 });
  });
});

describe('checkOwnership (chaos --hosts)', () => {
  const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
  const state = (account: string, st: string, s: number) => ({ type: 'account.state', account, state: st, at: at(s) });
  const killMs = (s: number) => Date.parse(at(s));

  it('a hand-over (stopped on one daemon before open on the next) and a kill (its spans end at the kill) are not double ownership', () => {
    const r = checkOwnership(
      [
        { id: 'h1', events: [state('a', 'connecting', 1), state('a', 'open', 2), state('a', 'stopped', 10), state('b', 'open', 2)], killedAt: [killMs(20)] },
        { id: 'h2', events: [state('a', 'connecting', 11), state('a', 'open', 12), state('b', 'reconnecting', 31), state('b', 'open', 32)], killedAt: [] },
      ],
      'z',
    );
    expect(r).toEqual({ overlaps: [], conflicts: 0 });
  });

  it('reports an account running on two daemons at overlapping times, also one still running at a kill that had not happened yet', () => {
    const r = checkOwnership(
      [
        { id: 'h1', events: [state('a', 'open', 2), state('a', 'stopped', 10), state('b', 'open', 2)], killedAt: [killMs(30)] },
        { id: 'h2', events: [state('a', 'reconnecting', 9), state('b', 'open', 25)], killedAt: [] },
      ],
      'z',
    );
    expect(r.overlaps).toHaveLength(2);
    expect(r.overlaps[0]).toMatch(/^a on h1 and h2/);
    expect(r.overlaps[1]).toMatch(/^b on h1 and h2/);
  });

  it('counts 440 closes a daemon saw, except the conflict the run injects at the end', () => {
    const close = (account: string, s: number) => ({ type: 'account.close', account, code: 440, at: at(s) });
    const r = checkOwnership(
      [
        { id: 'h1', events: [close('a', 5), state('z', 'open', 1), close('z', 50), state('z', 'conflict', 50)], killedAt: [] },
        { id: 'h2', events: [close('z', 7)], killedAt: [] },
      ],
      'z',
    );
    expect(r.conflicts).toBe(2); // a at 5 s and z at 7 s; z's final one at 50 s is the injected one
  });
});
