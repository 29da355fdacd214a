// The inbox of a cluster on a real PostgreSQL server, with two Inbox objects as two daemons: the
// owner's commit is what the delivery receipt waits for (the inbound event's waitFor), a daemon
// without the account's lease stores nothing, and each daemon's tail publishes every row stored
// anywhere once, in cursor order, from its start on.
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Fence } from '../../src/cluster/lease-store.js';
import { EventBus, type BusEvent } from '../../src/events/bus.js';
import { Inbox } from '../../src/inbox/inbox.js';
import { NotOwnerError, PgInboxStore } from '../../src/inbox/pg-store.js';
import type { InboxRow } from '../../src/inbox/store.js';
import type { WaEvent } from '../../src/wa/types.js';
import { migratedPostgres } from '../helpers/postgres.js';
import { inboundMessage as msg } from './support.js';

const db = migratedPostgres({ beforeAll, afterAll });
const inboxes: Inbox[] = [];
afterEach(async () => {
  inboxes.splice(0).forEach((i) => i.stopTail());
  await db.pool.query('TRUNCATE inbox, wa_leases; UPDATE inbox_cursor SET n = 0');
});

async function lease(account: string, owner: string): Promise<Fence> {
  const r = await db.pool.query<{ epoch: string }>(
    `INSERT INTO wa_leases (account, owner, epoch, expires_at) VALUES ($1, $2, 1, now() + interval '1 hour')
     ON CONFLICT (account) DO UPDATE SET owner = $2, expires_at = now() + interval '1 hour' RETURNING epoch`,
    [account, owner],
  );
  return { owner, lease: { account, epoch: Number(r.rows[0]!.epoch) } };
}

/** A daemon's inbox: its fences, what its bus published, what its followers were handed. */
function daemon(fences: Map<string, Fence> = new Map()): { inbox: Inbox; events: BusEvent[]; followed: InboxRow[] } {
  const bus = new EventBus();
  const events: BusEvent[] = [];
  bus.subscribe({}, (e) => events.push(e));
  const inbox = new Inbox({ store: new PgInboxStore(db.pool, { fenceOf: (a) => fences.get(a) ?? null }), bus, log: pino({ level: 'silent' }) });
  inboxes.push(inbox);
  const followed: InboxRow[] = [];
  inbox.follow((row) => followed.push(row));
  return { inbox, events, followed };
}

/**
 * Waits until pred holds, for at most 10 s. The rows come from a real PostgreSQL server, so a
 * count of event-loop turns is no bound: on a loaded machine 2,000 turns passed before a NOTIFY did.
 */
async function until(pred: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!pred() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  expect(pred()).toBe(true);
}

/** A connection that emits one inbound event, as BaileysConnection does: the commits listeners hand to waitFor. */
function connection(): { onConnectionEvent(l: (e: WaEvent) => void): () => void; receive(m: ReturnType<typeof msg>): Promise<unknown>[] } {
  const listeners = new Set<(e: WaEvent) => void>();
  return {
    onConnectionEvent: (l) => (listeners.add(l), () => listeners.delete(l)),
    receive: (message) => {
      const commits: Promise<unknown>[] = [];
      for (const l of listeners) l({ type: 'inbound', message, waitFor: (c) => commits.push(c) });
      return commits;
    },
  };
}

describe('the inbox in a cluster', () => {
  it("the receipt waits for the owner's commit; a daemon without the lease stores nothing and its commit rejects", async () => {
    const owner = daemon(new Map([['main', await lease('main', 'A')]]));
    const other = daemon();
    const [a, b] = [connection(), connection()];
    owner.inbox.attach('main', a);
    other.inbox.attach('main', b);
    const [commit] = a.receive(msg({ id: 'X1' }));
    expect(commit).toBeInstanceOf(Promise);
    await commit;
    expect((await owner.inbox.store.list({ limit: 10, statuses: ['ok'] })).map((r) => r.id)).toEqual(['X1']); // committed before the receipt
    const [refused] = b.receive(msg({ id: 'X2' }));
    await expect(refused).rejects.toBeInstanceOf(NotOwnerError);
    expect((await owner.inbox.store.list({ limit: 10, statuses: ['ok'] })).map((r) => r.id)).toEqual(['X1']);
  });

  it('each daemon publishes every row stored anywhere once, in cursor order, from its start on; pokes racing a read repeat nothing', async () => {
    const fences = new Map([
      ['main', await lease('main', 'A')],
      ['second', await lease('second', 'A')],
    ]);
    const owner = daemon(fences);
    await owner.inbox.store.store('main', msg({ id: 'before' }), 'ok'); // before any tail: never published
    const reader = daemon();
    await Promise.all([owner.inbox.startTail(60_000), reader.inbox.startTail(60_000)]);
    const ids = Array.from({ length: 12 }, (_, i) => `m${i}`);
    for (const [i, id] of ids.entries()) {
      await owner.inbox.receive(i % 3 ? 'main' : 'second', msg({ id }));
      reader.inbox.poke(); // as the NOTIFY does; several land while a read is running
      reader.inbox.poke();
    }
    reader.inbox.poke();
    for (const d of [owner, reader]) {
      await until(() => d.followed.length >= ids.length);
      expect(d.followed.map((r) => r.id)).toEqual(ids);
      expect(d.events.filter((e) => e.type === 'message.inbound').map((e) => e.id)).toEqual(ids);
      expect(d.followed.map((r) => r.cursor)).toEqual([...d.followed.map((r) => r.cursor)].sort((x, y) => x - y));
    }
    // A stopped tail publishes nothing more.
    reader.inbox.stopTail();
    await owner.inbox.receive('main', msg({ id: 'after stop' }));
    reader.inbox.poke();
    await until(() => owner.followed.length === ids.length + 1);
    expect(reader.followed).toHaveLength(ids.length);
  });
});
