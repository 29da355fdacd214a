// The outbox changes journal is written by triggers in the transaction of each state change.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { OutboxChanges, changeToJson } from '../../src/outbox/changes.js';
import { closeStateDb, openStateDb, type StateDb } from '../../src/store/db.js';
import { makeTmpDir } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => void };
let db: StateDb;
beforeEach(() => {
  tmp = makeTmpDir('wa-changes-');
  db = openStateDb(tmp.dir);
});
afterEach(() => {
  closeStateDb(db);
  tmp.cleanup();
});

let t = 1_000;
function insert(account: string, messageId: string, state = 'queued'): number {
  t += 1;
  return Number(
    db
      .prepare(`INSERT INTO outbox (account, recipient, chat_type, kind, payload, message_id, state, created_at, updated_at) VALUES (?, '15550002222@s.whatsapp.net', 'direct', 'message', '{}', ?, ?, ?, ?)`)
      .run(account, messageId, state, t, t).lastInsertRowid,
  );
}
function move(id: number, state: string, reason: string | null = null): void {
  t += 1;
  db.prepare('UPDATE outbox SET state = ?, reason = ?, updated_at = ? WHERE id = ?').run(state, reason, t, id);
}

it('journals enqueue and every state a sender cares about, not the sending/unknown churn, with a cursor that only grows', () => {
  const changes = new OutboxChanges(db);
  const a = insert('main', 'A');
  move(a, 'sending');
  move(a, 'queued'); // a send error put it back: churn
  move(a, 'sending');
  move(a, 'unknown');
  move(a, 'sent');
  move(a, 'delivered');
  move(a, 'delivered'); // no change
  move(a, 'read');
  const b = insert('second', 'B', 'held');
  move(b, 'denied', 'rejected by operator');
  db.prepare('UPDATE outbox SET attempts = attempts + 1 WHERE id = ?').run(a); // not a state change
  const all = changes.list({ limit: 100 });
  expect(all.map((c) => [c.messageId, c.state])).toEqual([
    ['A', 'queued'],
    ['A', 'sent'],
    ['A', 'delivered'],
    ['A', 'read'],
    ['B', 'held'],
    ['B', 'denied'],
  ]);
  expect(all.map((c) => c.cursor)).toEqual([...all.map((c) => c.cursor)].sort((x, y) => x - y));
  expect(changes.list({ limit: 100, after: all[3]!.cursor, accounts: ['second'] }).map((c) => c.state)).toEqual(['held', 'denied']);
  expect(changes.list({ limit: 100, accounts: ['main'] })).toHaveLength(4);
  expect(changeToJson(all[5]!)).toEqual({ cursor: String(all[5]!.cursor), id: b, account: 'second', messageId: 'B', to: '15550002222@s.whatsapp.net', state: 'denied', reason: 'rejected by operator', at: new Date(all[5]!.at).toISOString() });
  expect(changes.prune(all[2]!.at)).toBe(2);
  expect(changes.list({ limit: 100 })).toHaveLength(4);
});
