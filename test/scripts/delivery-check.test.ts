// The chaos and demo checker, in-process: it must report what went wrong, not only pass.
import { describe, expect, it } from 'vitest';
import { type AcceptedSend, type DeliveryWorld, type ReceivedMessage, checkDeliveries } from '../../scripts/delivery-check.mjs';

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
