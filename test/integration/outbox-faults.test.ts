// Messages sent while the connection breaks: after recovery every message is shown exactly once
// at the peer (wire duplicates of the same id are allowed and counted), in order per peer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaultSpec } from '../../src/emulator/index.js';
import { startWorld, type World } from '../helpers/world.js';

const PHONE = '15550001111';
let world: World;

beforeAll(async () => {
  world = await startWorld();
  await world.addAndPair('main', PHONE);
}, 60_000);
afterAll(async () => {
  await world?.close();
});

type Accepted = { id: number; messageId: string; state: string };

/** Sends n messages alternating between two peers, injecting the fault after `faultAfter` of them. */
async function burst(peers: [string, string], n: number, fault: FaultSpec, faultAfter = 10): Promise<Accepted[]> {
  const sent: Accepted[] = [];
  for (let i = 0; i < n; i++) {
    if (i === faultAfter) world.emulator.injectFault(PHONE, fault);
    const to = peers[i % 2]!;
    sent.push((await world.client.request<Accepted>('POST', '/v1/messages', { account: 'main', to, text: `${to}#${i}` })).body);
  }
  return sent;
}

/** Waits until every row is delivered; returns how many wire sends were needed in all. */
async function allDelivered(rows: Accepted[], timeoutMs = 45_000): Promise<void> {
  const ids = new Set(rows.map((r) => r.id));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const done = new Set(world.events.filter((e) => e.type === 'message.delivered' && ids.has(e.id as number)).map((e) => e.id));
    if (done.size === ids.size) return;
    if (Date.now() > deadline) {
      const list = (await world.client.request<{ messages: Array<{ id: number; state: string }> }>('GET', '/v1/messages?limit=1000')).body.messages;
      throw new Error(`not delivered: ${list.filter((m) => ids.has(m.id) && m.state !== 'delivered').map((m) => `${m.id}:${m.state}`).join(', ')}`);
    }
    await world.waitEvent((e) => e.type === 'message.delivered' && ids.has(e.id as number) && !done.has(e.id), { timeoutMs: deadline - Date.now() }).catch(() => {});
  }
}

function assertExactlyOnceInOrder(peers: [string, string], rows: Accepted[]): { wireDuplicates: number } {
  let wireDuplicates = 0;
  for (const peer of peers) {
    const shown = world.emulator.peerMessages(peer);
    const expected = rows.filter((_, i) => peers[i % 2] === peer);
    expect(shown.map((m) => m.id)).toEqual(expected.map((r) => r.messageId)); // once each, in order
    expect(new Set(shown.map((m) => m.text)).size).toBe(shown.length);
    wireDuplicates += shown.reduce((n, m) => n + (m.copies - 1), 0);
  }
  return { wireDuplicates };
}

describe('50 messages through a fault', () => {
  it.each([
    ['428 close', { kind: 'close' }, ['15550003001', '15550003002']],
    ['408-style app-silent socket', { kind: 'app-silent' }, ['15550003011', '15550003012']],
    ['black hole', { kind: 'black-hole' }, ['15550003021', '15550003022']],
    ['515 restart required', { kind: 'stream-error', code: 515 }, ['15550003031', '15550003032']],
    ['503 unavailable', { kind: 'stream-error', code: 503 }, ['15550003041', '15550003042']],
  ] as Array<[string, FaultSpec, [string, string]]>)('%s: every message shown once, in order per peer', async (_name, fault, peers) => {
    await world.waitState('main', 'open');
    const from = world.events.length;
    const rows = await burst(peers, 50, fault);
    await allDelivered(rows);
    assertExactlyOnceInOrder(peers, rows);
    // The fault really fell inside the burst: a close came after the first row was queued and
    // before the last row was delivered.
    const window = world.events.slice(from);
    const firstQueued = window.findIndex((e) => e.type === 'message.queued');
    const lastDelivered = window.map((e) => e.type === 'message.delivered').lastIndexOf(true);
    const close = window.findIndex((e) => e.type === 'account.close' && e.account === 'main');
    expect(close).toBeGreaterThan(firstQueued);
    expect(close).toBeLessThan(lastDelivered);
  });

  it('440 conflict is terminal: nothing is lost, and after the operator reconnects every message goes out once', async () => {
    await world.waitState('main', 'open');
    const peers: [string, string] = ['15550003051', '15550003052'];
    const rows = await burst(peers, 50, { kind: 'replace' });
    await world.waitState('main', 'conflict');
    const waiting = (await world.client.request<{ messages: Array<{ state: string }> }>('GET', '/v1/messages?account=main&limit=1000')).body.messages.filter((m) =>
      ['queued', 'unknown'].includes(m.state),
    );
    expect(waiting.length).toBeGreaterThan(0);
    await world.client.request('POST', '/v1/accounts/main/reconnect');
    await allDelivered(rows);
    assertExactlyOnceInOrder(peers, rows);
  });
});
