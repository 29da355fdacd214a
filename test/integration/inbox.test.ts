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

describe('marking a chat read', () => {
  it('goes through the send gate as kind receipt: allowed, the peer sees blue ticks; in shadow mode nothing reaches the peer', async () => {
    const SHADOW = '15550001112';
    const w = await newWorld({
      config: (url) => ({
        accounts: [
          { id: 'main', wsUrl: url },
          { id: 'shadow', wsUrl: url },
        ],
        policy: { default: 'allow', rules: [{ action: 'deny', name: 'shadow-mode', match: { account: 'shadow' } }] },
      }),
    });
    await w.pair('main', MAIN);
    await w.pair('shadow', SHADOW);
    const toMain = await w.emulator.sendInbound({ from: PEERS[0]!, to: MAIN, text: 'read me' });
    const toShadow = await w.emulator.sendInbound({ from: PEERS[0]!, to: SHADOW, text: 'do not tell me you read this' });
    await waitRows(w, (r) => r.length >= 2);

    const read = await runCli(['read', '--account', 'main', '--chat', PEERS[0]!, '--json', '--socket', w.socket], w.env);
    expect(read.code).toBe(0);
    expect(JSON.parse(read.stdout)).toMatchObject({ account: 'main', state: 'sent', marked: 1 });
    await w.emulator.timeline.waitFor({ phone: MAIN, dir: 'in', tag: 'receipt', attrs: { type: 'read' }, contains: toMain.id });
    expect(w.emulator.sentMessages(PEERS[0]!).find((m) => m.id === toMain.id)?.status).toBe('read');
    // marked once: a second call has nothing to do
    expect((await w.client.request<{ state: string }>('POST', '/v1/chats/read', { account: 'main', chat: PEERS[0] })).body.state).toBe('nothing_to_read');

    const denied = await runCli(['read', '--account', 'shadow', '--chat', PEERS[0]!, '--json', '--socket', w.socket], w.env);
    expect(denied.code).toBe(1);
    expect(JSON.parse(denied.stdout)).toMatchObject({ state: 'denied', rule: 'shadow-mode', marked: 0 });
    // The truth is the emulator: a later message's receipt proves the shadow socket's frames were
    // processed, and still no read receipt for the first one ever arrived.
    const later = await w.emulator.sendInbound({ from: PEERS[0]!, to: SHADOW, text: 'later' });
    await w.emulator.timeline.waitFor({ phone: SHADOW, dir: 'in', tag: 'receipt', contains: later.id });
    const shadowReceipts = w.emulator.timeline.entries({ phone: SHADOW }).filter((e) => e.dir === 'in' && e.stanza.startsWith('<receipt'));
    expect(JSON.stringify(shadowReceipts)).not.toMatch(/type="read"/);
    expect(w.emulator.sentMessages(PEERS[0]!).find((m) => m.id === toShadow.id)?.status).toBe('delivered');
    const audit = (await w.client.request<{ audit: Array<{ account: string; kind: string; decision: string }> }>('GET', '/v1/audit?account=shadow')).body.audit;
    expect(audit[0]).toMatchObject({ account: 'shadow', kind: 'receipt', decision: 'deny' });
  });
});

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
    const accounts = (await w.client.request<{ accounts: Array<{ id: string; inbox: unknown }> }>('GET', '/v1/accounts')).body.accounts;
    expect(accounts.find((a) => a.id === 'main')?.inbox).toEqual({ messages: 1, undecryptable: 0, ignored: 0 });
  });

  it('what happened to our own messages is readable by cursor too: queued, sent, delivered, read', async () => {
    const w = await newWorld();
    await w.addAndPair('main', MAIN);
    const from = w.events.length;
    const sent = (await w.client.request<{ id: number; messageId: string }>('POST', '/v1/messages', { account: 'main', to: PEERS[1]!, text: 'hi there' })).body;
    await w.waitEvent((e) => e.type === 'message.delivered' && e.id === sent.id, { from });
    w.emulator.sendReceipt({ from: PEERS[1]!, to: MAIN, id: sent.messageId, type: 'read' });
    await w.waitEvent((e) => e.type === 'message.read' && e.id === sent.id, { from });
    const page = (await w.client.request<{ changes: Array<{ cursor: string; id: number; messageId: string; state: string }>; next: string }>('GET', '/v1/messages/changes?account=main')).body;
    expect(page.changes.map((c) => [c.id, c.messageId, c.state])).toEqual([
      [sent.id, sent.messageId, 'queued'],
      [sent.id, sent.messageId, 'sent'],
      [sent.id, sent.messageId, 'delivered'],
      [sent.id, sent.messageId, 'read'],
    ]);
    expect(page.next).toBe(page.changes[3]!.cursor);
    // a restarted bot reads on from its cursor
    await w.restartDaemon();
    expect((await w.client.request<{ changes: unknown[] }>('GET', `/v1/messages/changes?after=${page.changes[1]!.cursor}`)).body.changes).toHaveLength(2);
  });

  it('allowFrom: a sender not on the list is stored as ignored and reaches no reader; a listed one does', async () => {
    const w = await newWorld({ config: (url) => ({ accounts: [{ id: 'main', wsUrl: url, allowFrom: [`+${PEERS[0]}`] }], consumers: [{ name: 'bot', type: 'stream' }] }) });
    await w.pair('main', MAIN);
    const stranger = await w.emulator.sendInbound({ from: PEERS[2]!, to: MAIN, text: 'from a stranger' });
    const friend = await w.emulator.sendInbound({ from: PEERS[0]!, to: MAIN, text: 'from a friend' });
    const rows = await waitRows(w, (r) => r.length >= 2);
    expect(rows.map((r) => [r.id, r.status])).toEqual([
      [stranger.id, 'ignored'],
      [friend.id, 'ok'],
    ]);
    // the stranger's message was still acknowledged to WhatsApp (it is stored), never delivered to a reader
    expect((await inbox(w)).messages.map((r) => r.id)).toEqual([friend.id]);
    const streamed: Row[] = [];
    const abort = new AbortController();
    await w.client.stream('/v1/inbox/stream?consumer=bot', (raw) => (streamed.push(raw as Row), abort.abort()), { signal: abort.signal }).catch(() => {});
    expect(streamed.map((r) => r.id)).toEqual([friend.id]);
    expect(w.events.filter((e) => e.type === 'message.inbound').map((e) => e.id)).toEqual([friend.id]);
    const ignored = w.events.filter((e) => e.type === 'message.ignored');
    expect(ignored).toEqual([expect.objectContaining({ id: stranger.id, from: `${PEERS[2]}@s.whatsapp.net` })]);
    expect(JSON.stringify(w.events)).not.toContain('from a stranger');
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

  it('1,000 messages to 3 accounts while faults hit the sockets and the daemon is killed -9 four times: every receipted message stored exactly once, none missing', async () => {
    const w = await newWorld();
    const accounts = [
      ['a1', '15550001121'],
      ['a2', '15550001122'],
      ['a3', '15550001123'],
    ] as const;
    for (const [id, phone] of accounts) await w.addAndPair(id, phone);
    const ids: string[] = [];
    const faults = ['terminate', 'close', 'xmlstreamend'] as const;
    // Five rounds of 200. In the first four, a socket fault lands part-way through the round and
    // the daemon is killed once it has stored a random number of the round's messages, so both
    // land in the middle of receiving.
    for (let round = 0; round < 5; round++) {
      const from = w.events.length;
      for (let i = 0; i < 200; i++) {
        const [, phone] = accounts[i % 3]!;
        ids.push((await w.emulator.sendInbound({ from: PEERS[(i + round) % 3]!, to: phone, text: `round ${round} message ${i}` })).id);
        if (round < 4 && i === 60) w.emulator.injectFault(accounts[round % 3]![1], { kind: faults[round % 3]! });
      }
      if (round === 4) break;
      const after = 20 + Math.floor(Math.random() * 120);
      let seen = 0;
      await w.waitEvent((e) => e.type === 'message.inbound' && ++seen >= after, { from, timeoutMs: 30_000 });
      await w.restartDaemon({ kill: true });
    }
    // Back up for good: wait until the accounts are open and everything queued has come through.
    const deadline = Date.now() + 90_000;
    let rows: Row[] = [];
    for (;;) {
      try {
        for (const [id] of accounts) await w.waitState(id, 'open', 30_000);
        rows = await waitRows(w, (r) => r.length >= ids.length, 30_000);
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        if (!(err instanceof DaemonUnreachableError) && !(err instanceof ApiError) && !/ECONNRESET|socket hang up|ECONNREFUSED|ENOENT|no matching daemon event|never got there/.test(String(err))) throw err;
      }
    }
    expect(ids).toHaveLength(1000);
    // Every row is committed before its receipt leaves: wait until the client has answered every
    // message, with a receipt or an ack. (A message stored just before a kill whose Signal session
    // had moved on is answered with a negative ack when it comes again: it is kept, and the
    // emulator never sees a delivery receipt for it. That is allowed; the reverse is not.)
    const answered = (id: string) => (e: { dir: string; stanza: string }) => e.dir === 'in' && (e.stanza.startsWith('<receipt') || e.stanza.startsWith('<ack')) && e.stanza.includes(id);
    for (const id of ids) await w.emulator.timeline.waitFor(answered(id), { timeoutMs: 20_000 });
    // A message the daemon could not decrypt was answered with a retry receipt (which counts as
    // answered above); its row is filled once the peer's phone has sent it again. A row that
    // stays undecryptable fails the last check below.
    rows = await waitRows(w, (r) => r.length >= ids.length && r.every((x) => x.status === 'ok'), 30_000).catch(() => allRows(w));
    const receipted = PEERS.flatMap((p) => w.emulator.sentMessages(p)).filter((m) => m.status === 'delivered' || m.status === 'read').map((m) => m.id);
    const stored = rows.map((r) => r.id);
    const storedSet = new Set(stored);
    expect(storedSet.size).toBe(stored.length); // exactly once
    expect(receipted.length).toBeGreaterThan(900);
    expect(receipted.filter((id) => !storedSet.has(id))).toEqual([]); // receipted ⇒ stored
    expect(ids.filter((id) => !storedSet.has(id))).toEqual([]); // none missing
    // A row left behind names what the peer did about it, for the reader of a failure.
    const retriesOf = (id: string) => w.emulator.timeline.entries().filter((e) => e.dir === 'in' && e.stanza.startsWith('<receipt') && e.stanza.includes('type="retry"') && e.stanza.includes(id)).length;
    const said = (id: string) => [
      ...w.emulator.timeline.entries().filter((e) => e.stanza.includes(id)).map((e) => `  emulator ${e.dir} @${e.session}: ${e.stanza.slice(0, 300)}`),
      ...w.outputs().split('\n').filter((l) => l.includes(id)).map((l) => `  daemon: ${l.slice(0, 600)}`),
    ].join('\n');
    expect(rows.filter((r) => r.status !== 'ok').map((r) => `${r.id} ${r.status}: ${retriesOf(r.id)} retry receipt(s), ${w.emulator.inboundResends(r.id)} re-send(s), ${w.emulator.inboundSessionsRebuilt(r.id)} new session(s); row ${JSON.stringify(r)}\n${said(r.id)}`)).toEqual([]);
  }, 180_000);
});
