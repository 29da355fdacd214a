// Durable inbound, end to end: real Baileys in the daemon process, the emulator's records as the
// truth. `GET /peers/<peer>/sent` shows which of a peer's messages the account sent a delivery
// receipt for; every one of those must be in the inbox, exactly once.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, DaemonUnreachableError } from '../../src/control/client.js';
import { runCli } from '../helpers/cli-process.js';
import { useWorlds, type World } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);
const MAIN = '15550001111';
const PEERS = ['15550006001', '15550006002', '15550006003'];

type Row = { cursor: string; id: string; account: string; chat: string; from: string; chatType: string; kind: string; text: string | null; timestamp: number; receivedAt: string; status: string; offline?: boolean };

async function inbox(w: World, query = ''): Promise<{ messages: Row[]; next: string }> {
  return (await w.client.request<{ messages: Row[]; next: string }>('GET', `/v1/inbox${query}`)).body;
}

/** Every stored row (all statuses), paging by cursor. */
async function allRows(w: World): Promise<Row[]> {
  const out: Row[] = [];
  let after = '0';
  for (;;) {
    const page = await inbox(w, `?status=all&limit=1000&after=${after}`);
    out.push(...page.messages);
    if (page.messages.length < 1000) return out;
    after = page.next;
  }
}

/** Waits until `pred` holds for the stored rows (re-reading after each inbound event). */
async function waitRows(w: World, pred: (rows: Row[]) => boolean, timeoutMs = 20_000): Promise<Row[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const from = w.events.length;
    const rows = await allRows(w);
    if (pred(rows)) return rows;
    if (Date.now() > deadline) throw new Error(`inbox never got there; it holds ${rows.length} rows`);
    await w.waitEvent((e) => e.type === 'message.inbound' || e.type === 'message.ignored', { from, timeoutMs: Math.max(1, deadline - Date.now()) }).catch(() => {});
  }
}

describe('inbound messages are stored before they are acknowledged', () => {
  it('a message is in the inbox with a cursor once its receipt went out; GET /v1/inbox and the CLI read it', async () => {
    const w = await newWorld();
    await w.addAndPair('main', MAIN);
    const sent = await w.emulator.sendInbound({ from: PEERS[0]!, to: MAIN, text: 'hello daemon' });
    await w.emulator.timeline.waitFor({ phone: MAIN, dir: 'in', tag: 'receipt', contains: sent.id });
    const page = await inbox(w);
    expect(page.messages).toEqual([
      expect.objectContaining({ id: sent.id, account: 'main', chat: `${PEERS[0]}@s.whatsapp.net`, from: `${PEERS[0]}@s.whatsapp.net`, chatType: 'direct', kind: 'text', text: 'hello daemon', status: 'ok' }),
    ]);
    const row = page.messages[0]!;
    expect(row.cursor).toMatch(/^\d+$/);
    expect(page.next).toBe(row.cursor);
    expect((await inbox(w, `?after=${row.cursor}`)).messages).toEqual([]);
    const cli = await runCli(['inbox', '--json', '--socket', w.socket], w.env);
    expect(cli.code).toBe(0);
    expect(cli.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([row]);
    expect((await w.account('main')).inbox ?? (await w.client.request<{ accounts: Array<{ inbox: unknown }> }>('GET', '/v1/accounts')).body.accounts[0]!.inbox).toBeDefined();
  });

  it('a message whose commit fails gets no delivery receipt (Baileys asks for it again instead); the next one is stored and receipted', async () => {
    const w = await newWorld();
    await w.addAndPair('main', MAIN);
    // A trigger in the daemon's own database refuses one message: a real failed commit.
    const db = new Database(join(w.dir, 'state', 'state.db'), { timeout: 5000 });
    db.exec(`CREATE TRIGGER refuse_poison BEFORE INSERT ON inbox WHEN NEW.text = 'poison' BEGIN SELECT RAISE(ABORT, 'disk says no'); END;`);
    db.close();
    const poison = await w.emulator.sendInbound({ from: PEERS[0]!, to: MAIN, text: 'poison' });
    const retry = await w.emulator.timeline.waitFor({ phone: MAIN, dir: 'in', tag: 'receipt', contains: poison.id });
    expect(retry.stanza).toContain('type="retry"');
    const fine = await w.emulator.sendInbound({ from: PEERS[0]!, to: MAIN, text: 'fine' });
    await waitRows(w, (rows) => rows.some((r) => r.id === fine.id));
    const status = new Map(w.emulator.sentMessages(PEERS[0]!).map((m) => [m.id, m.status]));
    expect(status.get(poison.id)).toBe('sent'); // never receipted as delivered
    expect(status.get(fine.id)).toBe('delivered');
    // The message the daemon could not keep is still counted: the upsert of Baileys' stub found
    // room for its envelope, marked undecryptable with the reason. (Its content is not lost on a
    // real server: the retry receipt makes the sender send it again.)
    const rows = await allRows(w);
    expect(rows.map((r) => [r.id, r.status])).toEqual([
      [poison.id, 'undecryptable'],
      [fine.id, 'ok'],
    ]);
    expect(JSON.stringify(rows[0])).toContain('disk says no');
  });

  it('messages sent while the daemon is down arrive once after it is back, marked offline', async () => {
    const w = await newWorld();
    await w.addAndPair('main', MAIN);
    w.daemon.child.kill('SIGTERM');
    await w.daemon.exited;
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await w.emulator.sendInbound({ from: PEERS[i % 3]!, to: MAIN, text: `while down ${i}` })).id);
    await w.restartDaemon();
    const rows = await waitRows(w, (r) => r.length >= ids.length);
    expect(rows.map((r) => r.id).sort()).toEqual([...ids].sort());
    expect(rows.every((r) => r.offline === true && r.status === 'ok')).toBe(true);
    expect(w.emulator.sentMessages(PEERS[0]!).every((m) => m.status === 'delivered')).toBe(true);
  });

  it('kill -9 while peers write: every message the emulator got a delivery receipt for is stored exactly once, and none is missing', async () => {
    const w = await newWorld();
    await w.addAndPair('main', MAIN);
    const ids: string[] = [];
    // Four rounds of 40; in the first three the daemon is killed once it has stored a random
    // number of that round's messages, so the kill lands in the middle of receiving.
    for (let round = 0; round < 4; round++) {
      const from = w.events.length;
      for (let i = 0; i < 40; i++) ids.push((await w.emulator.sendInbound({ from: PEERS[i % 3]!, to: MAIN, text: `round ${round} message ${i}` })).id);
      if (round === 3) break;
      const after = 5 + Math.floor(Math.random() * 25);
      let seen = 0;
      await w.waitEvent((e) => e.type === 'message.inbound' && ++seen >= after, { from, timeoutMs: 30_000 });
      await w.restartDaemon({ kill: true });
    }
    // Back up for good: wait until the account is open and everything queued has come through.
    const deadline = Date.now() + 60_000;
    let rows: Row[] = [];
    for (;;) {
      try {
        await w.waitState('main', 'open', 30_000);
        rows = await waitRows(w, (r) => r.length >= ids.length, 30_000);
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        if (!(err instanceof DaemonUnreachableError) && !(err instanceof ApiError) && !/ECONNRESET|socket hang up|ECONNREFUSED|ENOENT/.test(String(err))) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const receipted = PEERS.flatMap((p) => w.emulator.sentMessages(p)).filter((m) => m.status === 'delivered' || m.status === 'read').map((m) => m.id);
    const stored = rows.map((r) => r.id);
    expect(new Set(stored).size).toBe(stored.length); // exactly once
    expect(receipted.filter((id) => !stored.includes(id))).toEqual([]); // receipted ⇒ stored
    expect(ids.filter((id) => !stored.includes(id))).toEqual([]); // none missing
    expect(rows.filter((r) => r.status !== 'ok').map((r) => `${r.id} ${r.status}`)).toEqual([]);
  }, 120_000);
});
