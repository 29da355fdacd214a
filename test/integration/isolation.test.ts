// One account's heavy work does not stall the others: 50 accounts probe their sockets every
// second with a 600 ms deadline while another account sends its first message to a large group
// (a Signal session and an encryption of the sender key for every member's device, all on the
// daemon's one event loop). None of the 50 may be closed as stale, and the loop itself must stay
// timely: its largest delay while the work ran stays under the probes' deadline, so the probes
// were answered in time, not merely forgiven (liveness.ts gives a probe back the time of a stall).
import { afterEach, describe, expect, it } from 'vitest';
import type { StatusResponse } from '../../src/control/wire.js';
import { httpUnix } from '../helpers/http-unix.js';
import { useWorlds, type World } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);
const QUIET = 50;
const MEMBERS = 300;
const HEAVY = '15550009999';
const quietPhone = (i: number) => `1555001${String(i).padStart(4, '0')}`;
const memberPhone = (i: number) => `1555002${String(i).padStart(4, '0')}`;

/** Pairs accounts `concurrency` at a time. */
async function pairAll(w: World, accounts: Array<{ id: string; phone: string }>, concurrency = 4): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let a = accounts[next++]; a; a = accounts[next++]) await w.addAndPair(a.id, a.phone);
    }),
  );
}

describe('one account cannot stall the others', () => {
  it(`a first send to a ${MEMBERS}-member group while ${QUIET} accounts probe every second (600 ms deadline): 0 stale closes, the loop stays under the deadline`, async () => {
    const w = await newWorld({ config: { keepalive: { intervalMs: 1000, probeDeadlineMs: 600 }, log: { level: 'info' } } });
    // The members' simulated phones first: making hundreds of them (keys, signatures) holds this
    // process, and so the emulator, for seconds, which must not fall into the measured window.
    const members = Array.from({ length: MEMBERS }, (_, i) => memberPhone(i + 1));
    w.emulator.createGroup({ subject: 'Members only', participants: members });
    const quiet = Array.from({ length: QUIET }, (_, i) => ({ id: `q${i + 1}`, phone: quietPhone(i + 1) }));
    await pairAll(w, [{ id: 'heavy', phone: HEAVY }, ...quiet]);
    const group = w.emulator.createGroup({ subject: 'Everyone', participants: [HEAVY, ...members] });
    // Every quiet account is open, so its keepalive monitor runs and a close below would count.
    for (const q of quiet) await w.waitEvent((e) => e.type === 'account.state' && e.account === q.id && e.state === 'open');
    // Pairing is heavy work too (key generation at each first login): measure from a calm loop.
    await calmLoop(w);
    const probesBefore = await probes(w);
    const pausesBefore = await slicePauses(w);

    const from = w.events.length;
    const sent = (await w.client.request<{ id: number; messageId: string }>('POST', '/v1/messages', { account: 'heavy', to: group.jid, text: 'to everyone' })).body;
    await w.waitEvent((e) => e.type === 'message.sent' && e.id === sent.id, { from, timeoutMs: 120_000 });
    for (const phone of [members[0]!, members.at(-1)!]) await w.emulator.waitForDecrypted(phone, (m) => m.id === sent.messageId);
    const status = (await w.client.request<StatusResponse>('GET', '/v1/status')).body;
    const probesAfter = await probes(w);

    // The work was heavy: long enough to be cut into many 10 ms slices (a light send needs none),
    // counted rather than timed, as a faster Node does the same work in less time.
    expect((await slicePauses(w)) - pausesBefore).toBeGreaterThanOrEqual(20);
    // No quiet account was closed, as stale or otherwise, and every one kept probing.
    const closes = w.events.slice(from).filter((e) => (e.type === 'account.stale' || e.type === 'account.close') && e.account !== 'heavy');
    expect(closes).toEqual([]);
    for (const q of quiet) {
      const before = probesBefore.get(q.id)!;
      const after = probesAfter.get(q.id)!;
      expect(after.missed, q.id).toBe(before.missed);
      expect(after.sent, q.id).toBeGreaterThan(before.sent);
    }
    // And they were answered in time, not forgiven: the loop never ran as late as a deadline
    // (without the slices of wa/loop-slices.ts this send held it for about 2 s in one piece).
    expect(status.daemon.eventLoop!.lastTenSeconds.maxMs).toBeLessThan(600);
  }, 300_000);
});

/** Waits until the daemon's loop has run on time (under 100 ms late) for ten seconds. */
async function calmLoop(w: World): Promise<void> {
  const until = Date.now() + 60_000;
  for (;;) {
    const loop = (await w.client.request<StatusResponse>('GET', '/v1/status')).body.daemon.eventLoop!;
    if (loop.lastTenSeconds.maxMs < 100) return;
    if (Date.now() > until) throw new Error(`the loop did not calm down: ${JSON.stringify(loop)}`);
    await new Promise((r) => setTimeout(r, 500)); // polling a figure the daemon has no event for
  }
}

/** The daemon's count of pauses at slice boundaries, from its metrics. */
async function slicePauses(w: World): Promise<number> {
  const res = await httpUnix(w.socket, 'GET', '/v1/metrics');
  const line = res.body.split('\n').find((l) => l.startsWith('wa_supervisor_loop_slice_pauses_total '));
  if (!line) throw new Error('no wa_supervisor_loop_slice_pauses_total in the metrics');
  return Number(line.split(' ')[1]);
}

async function probes(w: World): Promise<Map<string, { sent: number; missed: number }>> {
  const { accounts } = (await w.client.request<{ accounts: Array<{ id: string; keepalive: { probesSent: number; probesMissed: number } | null }> }>('GET', '/v1/accounts')).body;
  return new Map(accounts.map((a) => [a.id, { sent: a.keepalive?.probesSent ?? 0, missed: a.keepalive?.probesMissed ?? 0 }]));
}
