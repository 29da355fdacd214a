// Operator actions on the event stream: the events an approve or a retry causes carry that
// request's id as causedBy (and keep the enqueuing request's requestId), so a subscriber
// following the operator's request sees what it caused.
import { afterEach, describe, expect, it } from 'vitest';
import { type World, useWorlds } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);

const PHONE = '15550001111';
const PEER = '15550006001';

type Event = { type: string; id?: number; state?: string; requestId?: string; causedBy?: string };

/** Streams /v1/events?requestId=R while `act` runs, until `until` matches; returns what came. */
async function eventsOf(w: World, requestId: string, act: () => Promise<unknown>, until: (e: Event) => boolean): Promise<Event[]> {
  const got: Event[] = [];
  const abort = new AbortController();
  let acted: Promise<unknown> = Promise.resolve();
  await w.client.stream(
    `/v1/events?requestId=${requestId}`,
    (raw) => {
      const e = raw as Event;
      got.push(e);
      if (until(e)) abort.abort();
    },
    { signal: abort.signal, onOpen: () => (acted = act()) },
  );
  await acted;
  return got;
}

describe('operator requests on the event stream', () => {
  // Before: these events carried only the enqueuing request's id, so this stream stayed empty.
  it('approve and retry: the events they cause carry causedBy and reach a requestId subscriber of the operator request', async () => {
    const world = await newWorld({ config: { policy: { default: 'allow', rules: [{ action: 'hold', match: { peer: PEER } }] } } });
    await world.addAndPair('main', PHONE);
    const held = await world.client.request<{ id: number; state: string }>('POST', '/v1/messages', { account: 'main', to: PEER, text: 'needs a yes' });
    expect(held.body.state).toBe('held');
    const enqueuedBy = held.requestId!;

    const approve = await eventsOf(
      world,
      'op-approve-1',
      () => world.client.request('POST', `/v1/messages/${held.body.id}/approve`, undefined, { 'x-request-id': 'op-approve-1' }),
      (e) => e.state === 'sent',
    );
    expect(approve.map((e) => [e.type, e.id, e.requestId, e.causedBy])).toEqual([
      ['message.queued', held.body.id, enqueuedBy, 'op-approve-1'],
      ['message.sending', held.body.id, enqueuedBy, 'op-approve-1'],
      ['message.sent', held.body.id, enqueuedBy, 'op-approve-1'],
    ]);
    // Sent, the operator's action is done: the receipts that follow are the message's own.
    const delivered = await world.waitEvent((e) => e.type === 'message.delivered' && e.id === held.body.id);
    expect(delivered.causedBy).toBeUndefined();

    const second = await world.client.request<{ id: number }>('POST', '/v1/messages', { account: 'main', to: PEER, text: 'withdrawn, then sent' });
    const cancel = await eventsOf(
      world,
      'op-cancel-1',
      () => world.client.request('POST', `/v1/messages/${second.body.id}/cancel`, undefined, { 'x-request-id': 'op-cancel-1' }),
      (e) => e.state === 'cancelled',
    );
    expect(cancel.map((e) => [e.state, e.causedBy])).toEqual([['cancelled', 'op-cancel-1']]);
    const retry = await eventsOf(
      world,
      'op-retry-1',
      () => world.client.request('POST', `/v1/messages/${second.body.id}/retry`, undefined, { 'x-request-id': 'op-retry-1' }),
      (e) => e.state === 'held',
    );
    // Retried, it meets the hold rule again at send time: held ends what the retry caused.
    expect(retry.map((e) => [e.state, e.requestId, e.causedBy])).toEqual([
      ['queued', second.requestId, 'op-retry-1'],
      ['held', second.requestId, 'op-retry-1'],
    ]);
  });
});
