// kill -9 in the middle of a burst: every message the daemon accepted (and every one a client
// retried with its idempotency key) reaches the peer, and none is shown twice.
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, DaemonUnreachableError } from '../../src/control/client.js';
import { useWorlds } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);

describe('kill -9 during a burst', () => {
  it('200 messages, daemon killed after 80 were accepted: all 200 shown once at the peer after restart', async () => {
    const world = await newWorld();
    const w = world;
    await w.addAndPair('main', '15550001111');
    const peers = ['15550004001', '15550004002', '15550004003'];
    const accepted = new Map<number, string>(); // i -> messageId
    let killed = false;
    for (let i = 0; i < 200; i++) {
      if (i === 80 && !killed) {
        killed = true;
        // No await: the kill lands while the sends of earlier rows are in flight.
        void w.restartDaemon({ kill: true });
      }
      for (;;) {
        try {
          const res = await w.client.request<{ messageId: string }>('POST', '/v1/messages', {
            account: 'main',
            to: peers[i % 3],
            text: `m${i}`,
            idempotencyKey: `burst-${i}`,
          });
          accepted.set(i, res.body.messageId);
          break;
        } catch (err) {
          // A client whose request was cut off (reset, or its body written into a closed socket)
          // retries with the same key once the daemon is back.
          if (!(err instanceof DaemonUnreachableError) && !(err instanceof ApiError) && !/ECONNRESET|EPIPE|socket hang up/.test(String(err))) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
    expect(accepted.size).toBe(200);
    expect(new Set(accepted.values()).size).toBe(200);
    await w.waitState('main', 'open');
    const deadline = Date.now() + 60_000;
    const shownCount = () => peers.reduce((n, p) => n + w.emulator.peerMessages(p).length, 0);
    while (shownCount() < 200 && Date.now() < deadline) {
      await w.waitEvent((e) => e.type === 'message.delivered', { from: w.events.length, timeoutMs: 5000 }).catch(() => {});
    }
    let wireDuplicates = 0;
    for (const [pi, peer] of peers.entries()) {
      const shown = w.emulator.peerMessages(peer);
      const expected = [...accepted.entries()].filter(([i]) => i % 3 === pi).map(([, id]) => id);
      expect(shown.map((m) => m.id)).toEqual(expected);
      wireDuplicates += shown.reduce((n, m) => n + m.copies - 1, 0);
    }
    expect(shownCount()).toBe(200);
    // Wire duplicates (the same id re-sent after the crash) are allowed; the peer shows each id once.
    expect(wireDuplicates).toBeLessThan(200);
  });
});
