// SIGTERM in the middle of a burst: the daemon exits 0 within its stop timeout, and after a
// restart every accepted message reaches the peer exactly once.
import { afterEach, describe, expect, it } from 'vitest';
import { useWorlds } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);

describe('SIGTERM during a burst', () => {
  it('exits 0 in time; after restart all accepted messages are shown once', async () => {
    const world = await newWorld();
    const w = world;
    await w.addAndPair('main', '15550001111');
    const peer = '15550005555';
    const accepted: string[] = [];
    const first = w.daemon;
    let t0 = 0;
    for (let i = 0; i < 100; i++) {
      if (i === 40) {
        t0 = Date.now();
        first.child.kill('SIGTERM');
      }
      try {
        const r = await w.client.request<{ messageId: string }>('POST', '/v1/messages', { account: 'main', to: peer, text: `t${i}` });
        accepted.push(r.body.messageId);
      } catch {
        break; // the daemon stopped accepting
      }
    }
    expect(await first.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(9000);
    expect(accepted.length).toBeGreaterThanOrEqual(40);
    expect(first.output()).toContain('"msg":"stopped"');

    await w.restartDaemon(); // the first daemon is already gone; this starts a new one
    await w.waitState('main', 'open');
    const deadline = Date.now() + 30_000;
    while (w.emulator.peerMessages(peer).length < accepted.length && Date.now() < deadline) {
      await w.waitEvent((e) => e.type === 'message.delivered', { from: w.events.length, timeoutMs: 5000 }).catch(() => {});
    }
    expect(w.emulator.peerMessages(peer).map((m) => m.id)).toEqual(accepted);
  });
});
