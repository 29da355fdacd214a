// The send gate with the real store and bus, fake accounts and connections, and a fake clock:
// what counts as a wire send, TTLs of unknown rows, the settle window after a reconnect, the
// operator's request on the events it causes, and listeners of removed accounts.
import { pino } from 'pino';
import { AccountSupervisor } from '../../src/accounts/supervisor.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_RETRY, DEFAULT_SETTLE_MS, gateSettingsFromConfig } from '../../src/config/gate-settings.js';
import { parseConfigText } from '../../src/config/load.js';
import { EventBus, type BusEvent } from '../../src/events/bus.js';
import { SEND_CONCURRENCY, SWEEP_INTERVAL_MS, SendGate, type GateAccount, type GateSettings } from '../../src/outbox/send-gate.js';
import { OutboxStore } from '../../src/outbox/store.js';
import { DEFAULT_PACING } from '../../src/outbox/token-bucket.js';
import { OPEN_POLICY } from '../../src/policy/policy.js';
import { closeStateDb, openStateDb, type StateDb } from '../../src/store/db.js';
import { SendNotWrittenError } from '../../src/wa/send-error.js';
import type { SendHooks, WaEvent, WaSender } from '../../src/wa/types.js';
import { displayText, type OutboundContent } from '../../src/outbox/content.js';
import { FakeConnector } from '../fakes/wa-connector.js';
import { tmpDirs } from '../helpers/tmp.js';

const NOW = 1_700_000_000_000;
const TTL = 60_000;
const SETTLE = 5000;
const PEER = '15550002222';
const PEER_JID = `${PEER}@s.whatsapp.net`;

const tmp = tmpDirs(afterEach, 'wa-gate-');

/** A connection that records what it was asked to send and fails as told. */
class FakeSender implements WaSender {
  readonly sent: Array<{ jid: string; text: string; messageId: string }> = [];
  /** What each send was given beyond its text. */
  readonly sends: Array<{ content: OutboundContent; hooks: SendHooks }> = [];
  /** Errors for the next sends, in order (undefined: the send succeeds). */
  readonly failures: Array<Error | undefined> = [];
  /** Replaceable: what a send does (records, then fails as `failures` says). */
  async send(jid: string, content: OutboundContent, messageId: string, hooks: SendHooks): Promise<void> {
    this.sends.push({ content, hooks });
    await this.sendText(jid, displayText(content), messageId);
  }
  async sendText(jid: string, text: string, messageId: string): Promise<void> {
    this.sent.push({ jid, text, messageId });
    const err = this.failures.shift();
    if (err) throw err;
  }
  /** Media re-upload requests, and what they answer. */
  readonly reuploads: Array<{ chat: string; id: string }> = [];
  async requestMediaReupload(chat: string, message: { id: string }): Promise<{ directPath: string; url: string }> {
    this.reuploads.push({ chat, id: message.id });
    return { directPath: '/v/new', url: 'https://media.invalid/v/new' };
  }
  readonly readReceipts: Array<{ chat: string; ids: string[] }> = [];
  async sendReadReceipt(chat: string, messages: ReadonlyArray<{ id: string }>): Promise<void> {
    this.readReceipts.push({ chat, ids: messages.map((m) => m.id) });
  }
}

/** An account as the gate sees it: a connection while open, and its connection events. */
class FakeAccount implements GateAccount {
  connection: FakeSender | null = null;
  readonly listeners = new Set<(e: WaEvent) => void>();
  constructor(
    readonly id: string,
    readonly bus: EventBus,
  ) {}
  onConnectionEvent(listener: (e: WaEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  emit(e: WaEvent): void {
    for (const l of [...this.listeners]) l(e);
  }
  /** Opens a new connection the way the runner does: the connection's open event, then the state. */
  open(): FakeSender {
    const conn = new FakeSender();
    this.emit({ type: 'open', jid: '15550001111:1@s.whatsapp.net', name: null });
    this.connection = conn;
    this.bus.publish({ type: 'account.state', account: this.id, state: 'open' });
    return conn;
  }
  close(): void {
    this.connection = null;
    this.bus.publish({ type: 'account.state', account: this.id, state: 'reconnecting', previous: 'open' });
  }
  ack(messageId: string, status: 'server' | 'delivered' | 'read' = 'server'): void {
    this.emit({ type: 'ack', messageId, chat: PEER_JID, status });
  }
}

let db: StateDb;
let store: OutboxStore;
let bus: EventBus;
let events: BusEvent[];
let accounts: Map<string, FakeAccount>;
let gate: SendGate;
let started = false;

function settings(o: Partial<GateSettings> = {}): GateSettings {
  return {
    policy: OPEN_POLICY,
    pacing: () => ({ ...DEFAULT_PACING, enabled: false }),
    ttlMs: TTL,
    maxAttempts: 5,
    retry: { initialMs: 1000, maxMs: 4000 },
    settleMs: SETTLE,
    ...o,
  };
}

function startGate(o: Partial<GateSettings> = {}): void {
  gate = new SendGate({
    store,
    bus,
    log: pino({ level: 'silent' }),
    accounts: (id) => accounts.get(id),
    phoneJidForLid: () => null,
    settings: settings(o),
  });
  void gate.start();
  started = true;
}

function account(id = 'main'): FakeAccount {
  const a = new FakeAccount(id, bus);
  accounts.set(id, a);
  gate.attach(id, a);
  return a;
}

/** Lets the drain loop and group commit run (setImmediate and microtasks are real). */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

/** Moves the fake clock, running the sweep and drain timers due meanwhile. */
async function advance(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
  await flush();
}

async function enqueue(text = 'hello', requestId = 'enq-1'): Promise<number> {
  const { row } = await gate.enqueue({ account: 'main', to: PEER, text, requestId });
  await flush();
  return row.id;
}

function states(id: number): string[] {
  return events.filter((e) => e.type.startsWith('message.') && e.id === id).map((e) => String(e.state));
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'], now: NOW });
  db = openStateDb(tmp());
  store = new OutboxStore(db);
  bus = new EventBus();
  events = [];
  bus.subscribe({}, (e) => events.push(e));
  accounts = new Map();
});

afterEach(async () => {
  if (started) await gate.stop();
  started = false;
  closeStateDb(db);
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('what counts as a wire send', () => {
  // Before: the send was counted before the call and never taken back, so a row whose send
  // failed locally was `unknown` with wireSends 1, was never expired, and went out when the
  // account returned, however late.
  it('a send that wrote nothing is not counted: the row is queued again and expires at its TTL', async () => {
    // The retry delay is full jitter: a draw of 0 (one in a thousand) would send it again at once.
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    startGate();
    const a = account();
    const conn = a.open();
    conn.failures.push(new SendNotWrittenError('not sent: All encryptions failed'));
    const id = await enqueue();
    expect(conn.sent).toHaveLength(1);
    expect(store.get(id)).toMatchObject({ state: 'queued', wireSends: 0, attempts: 1, reason: 'send error: not sent: All encryptions failed' });
    a.close();
    await advance(TTL + SWEEP_INTERVAL_MS);
    expect(store.get(id)).toMatchObject({ state: 'expired', reason: 'not sent before its TTL', wireSends: 0 });
    a.open();
    await flush();
    expect(a.connection!.sent).toEqual([]);
  });

  it('a send that failed because the socket went away, having written nothing, is queued without spending an attempt', async () => {
    startGate();
    const a = account();
    const conn = a.open();
    conn.sendText = async (jid, text, messageId) => {
      conn.sent.push({ jid, text, messageId });
      a.close();
      throw new SendNotWrittenError('not sent: the connection is not open');
    };
    const id = await enqueue();
    expect(store.get(id)).toMatchObject({ state: 'queued', wireSends: 0, attempts: 0 });
  });

  it('a send that failed after bytes may have left counts, and the row is unknown', async () => {
    startGate();
    const a = account();
    const conn = a.open();
    conn.failures.push(new Error('Timed Out'));
    const id = await enqueue();
    expect(store.get(id)).toMatchObject({ state: 'unknown', wireSends: 1, attempts: 1 });
  });

  it('a row already on the wire that fails locally on its re-send keeps its earlier count and stays unknown', async () => {
    startGate();
    const a = account();
    a.open();
    const id = await enqueue();
    a.close(); // no ack: unknown, wireSends 1
    expect(store.get(id)).toMatchObject({ state: 'unknown', wireSends: 1 });
    const conn = a.open();
    conn.failures.push(new SendNotWrittenError('not sent: All encryptions failed'));
    await advance(SETTLE);
    expect(conn.sent).toHaveLength(1);
    expect(store.get(id)).toMatchObject({ state: 'unknown', wireSends: 1, attempts: 1 });
  });
});

describe('the sweep', () => {
  it('claims for the accounts with rows to send only, and still sends a row nothing else woke', async () => {
    startGate();
    for (let i = 0; i < 50; i++) account(`idle${i}`).open();
    const main = account('main');
    const id = await enqueue('nobody woke me'); // no connection yet: the drain stops at once
    main.connection = new FakeSender(); // a connection that came without an open event or a state change
    await flush();
    expect(main.connection.sent).toHaveLength(0);
    const claims = vi.spyOn(store, 'claimNext');
    await advance(SWEEP_INTERVAL_MS);
    expect(main.connection.sent.map((m) => m.text)).toEqual(['nobody woke me']);
    expect(states(id)).toContain('sending');
    // Before, the sweep ran a claim transaction for each of the 51 accounts every time.
    expect(new Set(claims.mock.calls.map((c) => c[0]))).toEqual(new Set(['main']));
  });
});

describe('messages being built at once', () => {
  it(`at most ${SEND_CONCURRENCY} across all accounts; the others wait unclaimed by the wire, then go`, async () => {
    startGate();
    const n = SEND_CONCURRENCY + 8;
    let building = 0;
    let most = 0;
    const finish: Array<() => void> = [];
    const conns: FakeSender[] = [];
    for (let i = 0; i < n; i++) {
      const a = account(`a${i}`);
      const conn = a.open();
      // A send that takes as long as the test says (encryption under load, an upload).
      conn.send = async () => {
        building++;
        most = Math.max(most, building);
        await new Promise<void>((resolve) => finish.push(resolve));
        building--;
      };
      conns.push(conn);
      await gate.enqueue({ account: `a${i}`, to: PEER, text: `m${i}`, requestId: `r${i}` });
    }
    await flush();
    expect(building).toBe(SEND_CONCURRENCY);
    expect(gate.building.waiting).toBe(n - SEND_CONCURRENCY);
    while (finish.length) {
      finish.shift()!();
      await flush();
    }
    expect(most).toBe(SEND_CONCURRENCY);
    expect(store.countsByState()).toEqual({ sending: n }); // every one written, each waiting for its ack
  });
});

describe('unknown rows and the TTL', () => {
  // Before: expireDue skipped unknown rows, and the drain expired only rows with no wire send,
  // so this row was re-sent a TTL late when the account came back.
  it('an unknown row past its TTL expires with a reason and is not sent again when the account returns; a late receipt still settles it', async () => {
    startGate();
    const a = account();
    const first = a.open();
    const id = await enqueue();
    expect(first.sent).toHaveLength(1);
    a.close();
    expect(store.get(id)?.state).toBe('unknown');
    await advance(TTL + SWEEP_INTERVAL_MS);
    const row = store.get(id)!;
    expect(row.state).toBe('expired');
    expect(row.reason).toMatch(/^not confirmed before its TTL: handed to the socket once .* may have reached the peer; not sent again$/);
    const second = a.open();
    await advance(SETTLE + SWEEP_INTERVAL_MS);
    expect(second.sent).toEqual([]);
    a.ack(row.messageId, 'delivered');
    await flush();
    expect(store.get(id)).toMatchObject({ state: 'delivered', wireSends: 1 });
  });

  it('an unknown row whose TTL ends inside the settle window expires at the claim instead of going out', async () => {
    startGate();
    const a = account();
    a.open();
    const id = await enqueue();
    a.close();
    await advance(TTL - 1000);
    const conn = a.open();
    await advance(SETTLE);
    expect(conn.sent).toEqual([]);
    expect(store.get(id)?.state).toBe('expired');
  });
});

describe('the settle window after a reconnect', () => {
  // Before: on open the unknown row was claimed and re-sent at once, before any late receipt
  // could arrive.
  it('a receipt that arrives within the window settles the row without a second wire send', async () => {
    startGate();
    const a = account();
    a.open();
    const id = await enqueue();
    const { messageId } = store.get(id)!;
    a.close();
    const conn = a.open();
    await advance(SETTLE - 100);
    expect(conn.sent).toEqual([]);
    a.ack(messageId, 'delivered');
    await advance(SETTLE);
    expect(conn.sent).toEqual([]);
    expect(store.get(id)).toMatchObject({ state: 'delivered', wireSends: 1 });
    expect(events.find((e) => e.type === 'message.delivered' && e.id === id)?.note).toBe("settled by the server's ack or a receipt");
  });

  it('an echo of the id from the server settles it as sent; the local copy of our own send does not', async () => {
    startGate();
    const a = account();
    const conn = a.open();
    const id = await enqueue();
    const { messageId } = store.get(id)!;
    a.emit({ type: 'echo', messageId, chat: PEER_JID }); // Baileys' local copy, while sending
    await flush();
    expect(store.get(id)?.state).toBe('sending');
    a.close();
    a.emit({ type: 'echo', messageId, chat: PEER_JID }); // late local copy before the next open
    await flush();
    expect(store.get(id)?.state).toBe('unknown');
    a.open();
    a.emit({ type: 'echo', messageId, chat: PEER_JID });
    await flush();
    expect(store.get(id)).toMatchObject({ state: 'sent', wireSends: 1 });
    expect(conn.sent).toHaveLength(1);
  });

  it('with no ack, receipt or echo within the window the row is sent again once, with the same id', async () => {
    startGate();
    const a = account();
    const first = a.open();
    const id = await enqueue();
    a.close();
    const second = a.open();
    await advance(SETTLE - 1);
    expect(second.sent).toEqual([]);
    await advance(1);
    expect(second.sent).toEqual([first.sent[0]]);
    expect(store.get(id)).toMatchObject({ state: 'sending', wireSends: 2 });
    const resend = events.filter((e) => e.type === 'message.sending' && e.id === id).at(-1);
    expect(resend?.note).toBe('no ack, receipt or echo within the settle window: sent again with the same id');
    a.ack(first.sent[0]!.messageId);
    await advance(SETTLE * 3);
    expect(second.sent).toHaveLength(1);
    expect(store.get(id)?.state).toBe('sent');
  });

  it('a later message to the same peer waits behind the settling row; other peers go at once', async () => {
    startGate();
    const a = account();
    a.open();
    const id = await enqueue('first');
    a.close();
    const conn = a.open();
    await gate.enqueue({ account: 'main', to: PEER, text: 'second' });
    await gate.enqueue({ account: 'main', to: '15550003333', text: 'elsewhere' });
    await flush();
    expect(conn.sent.map((s) => s.text)).toEqual(['elsewhere']);
    a.ack(store.get(id)!.messageId, 'delivered');
    await flush();
    expect(conn.sent.map((s) => s.text)).toEqual(['elsewhere', 'second']);
  });

  it('settleMs 0 re-sends at once (the behaviour before the window)', async () => {
    startGate({ settleMs: 0 });
    const a = account();
    a.open();
    await enqueue();
    a.close();
    const conn = a.open();
    await flush();
    expect(conn.sent).toHaveLength(1);
  });
});

describe('operator requests on the events they cause', () => {
  // Before: these events carried only the enqueuing request's id, so a subscriber following
  // the operator's request saw nothing of what it caused.
  it('approve: the events until the row settles carry causedBy; both request ids find them', async () => {
    startGate({ policy: { ...OPEN_POLICY, rules: [{ action: 'hold', match: { peer: PEER_JID } }] } });
    const a = account();
    a.open();
    const id = await enqueue('draft', 'enq-1');
    expect(store.get(id)?.state).toBe('held');
    const byOperator: BusEvent[] = [];
    const byEnqueuer: BusEvent[] = [];
    bus.subscribe({ requestId: 'op-1', types: ['message.*'] }, (e) => byOperator.push(e));
    bus.subscribe({ requestId: 'enq-1', types: ['message.*'] }, (e) => byEnqueuer.push(e));
    await gate.approve(id, { client: 'cli', requestId: 'op-1' });
    await flush();
    a.ack(store.get(id)!.messageId, 'delivered');
    a.ack(store.get(id)!.messageId, 'read');
    await flush();
    expect(byOperator.map((e) => [e.state, e.requestId, e.causedBy])).toEqual([
      ['queued', 'enq-1', 'op-1'],
      ['sending', 'enq-1', 'op-1'],
      ['delivered', 'enq-1', 'op-1'],
    ]);
    expect(byEnqueuer.map((e) => e.state)).toEqual(['queued', 'sending', 'delivered', 'read']);
    expect(byEnqueuer.at(-1)?.causedBy).toBeUndefined(); // settled: later events are the row's own
  });

  it('cancel, retry and reject name their request', async () => {
    startGate({ policy: { ...OPEN_POLICY, rules: [{ action: 'hold', match: { peer: '15550003333@s.whatsapp.net' } }] } });
    account(); // never open: rows wait
    const id = await enqueue('wait');
    const seen: BusEvent[] = [];
    bus.subscribe({ requestId: 'op-2' }, (e) => seen.push(e));
    bus.subscribe({ requestId: 'op-3' }, (e) => seen.push(e));
    bus.subscribe({ requestId: 'op-4' }, (e) => seen.push(e));
    await gate.cancel(id, { requestId: 'op-2' });
    await gate.retry(id, { requestId: 'op-3' });
    const { row: held } = await gate.enqueue({ account: 'main', to: '15550003333', text: 'h', requestId: 'enq-2' });
    await gate.reject(held.id, { requestId: 'op-4' });
    expect(seen.map((e) => [e.id, e.state, e.causedBy])).toEqual([
      [id, 'cancelled', 'op-2'],
      [id, 'queued', 'op-3'],
      [held.id, 'denied', 'op-4'],
    ]);
  });
});

describe('accounts added and removed', () => {
  // Before: attach dropped the unsubscribe function, so every removed account's listener stayed.
  it('adding and removing accounts 50 times leaves no listener and no drain loop behind', async () => {
    startGate();
    const removed: FakeAccount[] = [];
    const subscribers = bus.subscriberCount;
    for (let i = 0; i < 50; i++) {
      const a = account(i % 2 ? 'main' : `acc${i}`);
      a.open();
      await gate.enqueue({ account: a.id, to: PEER, text: `m${i}` });
      a.close();
      bus.publish({ type: 'account.removed', account: a.id });
      accounts.delete(a.id);
      removed.push(a);
    }
    expect(removed.every((a) => a.listeners.size === 0)).toBe(true);
    expect(gate.listenerStats()).toEqual({ attached: 0, drains: 0 });
    expect(bus.subscriberCount).toBe(subscribers);
  });

  it('through the account supervisor: 30 runtime accounts added and removed leave no connection listener', async () => {
    vi.useRealTimers(); // the runners' own timers run for real here
    startGate();
    let live = 0;
    const supervisor = new AccountSupervisor({
      db,
      connector: new FakeConnector(),
      bus,
      log: pino({ level: 'silent' }),
      config: parseConfigText(JSON.stringify({ stateDir: tmp() }), '/c.json'),
      onRunnerCreated: (id, runner) => {
        const listen = runner.onConnectionEvent.bind(runner);
        runner.onConnectionEvent = (l) => {
          live++;
          const stop = listen(l);
          return () => {
            live--;
            return stop();
          };
        };
        gate.attach(id, runner);
      },
    });
    for (let i = 0; i < 30; i++) {
      supervisor.add(`acc${i % 3}`, undefined);
      expect(live).toBe(1);
      await supervisor.remove(`acc${i % 3}`);
    }
    expect(live).toBe(0);
    expect(gate.listenerStats().attached).toBe(0);
  });

  it('attaching an account id again replaces its listener', () => {
    startGate();
    const a = account('main');
    const b = account('main');
    expect(a.listeners.size).toBe(0);
    expect(b.listeners.size).toBe(1);
  });
});

describe('outbox settings from the config', () => {
  const parse = (outbox: unknown) => parseConfigText(JSON.stringify({ outbox }), '/c.json');

  it('the retry backoff and settle window are read from outbox.retry and outbox.settleMs, with the former fixed values as defaults', () => {
    expect(gateSettingsFromConfig(parse({}))).toMatchObject({ retry: DEFAULT_RETRY, settleMs: DEFAULT_SETTLE_MS });
    expect(DEFAULT_RETRY).toEqual({ initialMs: 2000, maxMs: 60_000 });
    const s = gateSettingsFromConfig(parse({ retry: { initialMs: 100, maxMs: 400 }, settleMs: 0 }));
    expect(s).toMatchObject({ retry: { initialMs: 100, maxMs: 400 }, settleMs: 0 });
  });

  it('the gate backs off within outbox.retry', () => {
    startGate({ retry: { initialMs: 100, maxMs: 400 } });
    const spy = vi.spyOn(Math, 'random').mockReturnValue(0.999);
    try {
      expect([1, 2, 3, 4, 10].map((n) => gate.retryDelay(n))).toEqual([99, 199, 399, 399, 399]);
    } finally {
      spy.mockRestore();
    }
  });

  it.each([
    [{ retry: { initialMs: 0 } }, 'outbox.retry.initialMs'],
    [{ retry: { maxMs: 1.5 } }, 'outbox.retry.maxMs'],
    [{ retry: { factor: 2 } }, 'outbox.retry.factor'],
    [{ settleMs: -1 }, 'outbox.settleMs'],
  ])('refuses %j naming %s', (outbox, key) => {
    expect(() => parse(outbox)).toThrow(key);
  });
});

describe('asking a sender\'s phone to upload an expired file again', () => {
  const media = { mediaType: 'image' as const, mediaKey: 'a2V5', directPath: '/v/old', url: 'https://media.invalid/v/old', fileEncSha256: null, fileSha256: null, fileLength: null, mimetype: 'image/png' };
  const PEER = '15550002222@s.whatsapp.net';

  it('passes the policy as a receipt to the chat, audited; a shadow account (deny) sends nothing', async () => {
    startGate({ policy: { ...OPEN_POLICY, rules: [{ action: 'deny', name: 'shadow', match: { account: 'quiet' } }] } });
    const main = account('main');
    const quiet = account('quiet');
    main.open();
    quiet.open();
    await expect(gate.requestMediaReupload({ account: 'main', chat: PEER, message: { id: 'M1' }, media })).resolves.toEqual({ directPath: '/v/new', url: 'https://media.invalid/v/new' });
    expect(main.connection!.reuploads).toEqual([{ chat: PEER, id: 'M1' }]);
    await expect(gate.requestMediaReupload({ account: 'quiet', chat: PEER, message: { id: 'M2' }, media })).rejects.toMatchObject({ status: 403, message: expect.stringContaining('deny by shadow') });
    expect(quiet.connection!.reuploads).toEqual([]);
    expect(store.audit({ limit: 2 }).map((e) => [e.account, e.kind, e.decision])).toEqual([['quiet', 'receipt', 'deny'], ['main', 'receipt', 'allow']]);
  });

  it('needs an open connection: 409, nothing asked', async () => {
    startGate();
    account('main');
    await expect(gate.requestMediaReupload({ account: 'main', chat: PEER, message: { id: 'M1' }, media })).rejects.toMatchObject({ status: 409 });
  });
});
