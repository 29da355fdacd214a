import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { STATEMENT_CACHE_MAX, cacheStatements, closeStateDb, openStateDb, writeTx } from '../../src/store/db.js';
import { StateDirLockedError, lockStateDir } from '../../src/store/lock.js';
import { MIGRATIONS, migrate, type Migration } from '../../src/store/migrations.js';
import { tmpDirs } from '../helpers/tmp.js';

const tmp = tmpDirs(afterEach);

describe('openStateDb', () => {
  it('opens with WAL, synchronous=FULL, foreign keys, and fullfsync on macOS', () => {
    const dir = tmp();
    const db = openStateDb(dir, { platform: 'darwin' });
    onTestFinished(() => {
      db.close();
    });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('fullfsync', { simple: true })).toBe(1);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
  });

  it('records applied migrations and does not rerun them', () => {
    const dir = tmp();
    closeStateDb(openStateDb(dir));
    const db = openStateDb(dir);
    onTestFinished(() => {
      db.close();
    });
    const rows = db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all();
    expect(rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
  });

  it('refuses a database written by a newer version', () => {
    const dir = tmp();
    const db = openStateDb(dir);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(MIGRATIONS.length + 1, 'future', 0);
    closeStateDb(db);
    expect(() => openStateDb(dir)).toThrow(/newer than this wa-supervisor knows/);
  });

  it('rolls back a failing migration as a whole', () => {
    const db = new Database(':memory:');
    const bad: Migration[] = [
      ...MIGRATIONS,
      {
        version: MIGRATIONS.length + 1,
        name: 'half done',
        up: (d) => {
          d.exec('CREATE TABLE half (x)');
          throw new Error('boom');
        },
      },
    ];
    expect(() => migrate(db, bad)).toThrow('boom');
    expect(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'half'").get()).toEqual({ n: 0 });
    expect(db.prepare('SELECT max(version) AS v FROM schema_migrations').get()).toEqual({ v: MIGRATIONS.length });
  });

  it('rejects a migration list with a gap', () => {
    const db = new Database(':memory:');
    expect(() => migrate(db, [{ version: 2, name: 'x', up: () => {} }])).toThrow(/out of order/);
  });

  it('writeTx commits as one IMMEDIATE transaction', () => {
    const db = openStateDb(tmp());
    onTestFinished(() => {
      db.close();
    });
    expect(() =>
      writeTx(db, () => {
        db.prepare("INSERT INTO meta (key, value) VALUES ('a', '1')").run();
        throw new Error('abort');
      }),
    ).toThrow('abort');
    expect(db.prepare('SELECT count(*) AS n FROM meta').get()).toEqual({ n: 0 });
  });

  it('prepares each SQL text once, and still answers with the current rows; a full cache drops the one used least recently', () => {
    const db = openStateDb(tmp());
    onTestFinished(() => {
      db.close();
    });
    const count = 'SELECT count(*) AS n FROM meta';
    const first = db.prepare(count);
    expect(db.prepare(count)).toBe(first);
    writeTx(db, () => db.prepare("INSERT INTO meta (key, value) VALUES ('b', '1')").run());
    expect(first.get()).toEqual({ n: 1 });
    const mem = new Database(':memory:');
    cacheStatements(mem);
    const zero = mem.prepare('SELECT 0');
    const one = mem.prepare('SELECT 1');
    for (let i = 2; i < STATEMENT_CACHE_MAX; i++) mem.prepare(`SELECT ${i}`);
    expect(mem.prepare('SELECT 0')).toBe(zero); // used again: now the newest
    mem.prepare(`SELECT ${STATEMENT_CACHE_MAX}`); // one more than the cache holds: SELECT 1 goes
    expect(mem.prepare('SELECT 0')).toBe(zero);
    expect(mem.prepare('SELECT 1')).not.toBe(one);
    mem.close();
  });
});

describe('lockStateDir', () => {
  // The holder is another process, as a second daemon would be; it runs the built module.
  const lockModule = new URL('../../dist/store/lock.js', import.meta.url).href;
  // It keeps no reference to the lock and collects its garbage before saying so: the lock must
  // hold all the same (a collected connection would be closed, and the lock gone with it).
  const holderCode = `import(${JSON.stringify(lockModule)}).then((m) => { m.lockStateDir(process.argv[1]); global.gc(); console.log('locked'); setInterval(() => {}, 1e6); })`;

  it('refuses a second holder, naming its pid, and frees the lock when the holder is killed with SIGKILL', async () => {
    const dir = tmp();
    const holder = spawn(process.execPath, ['--expose-gc', '-e', holderCode, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const gone = new Promise((r) => holder.once('exit', r));
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.once('data', () => resolve());
        holder.once('exit', (code) => reject(new Error(`holder exited ${code}`)));
      });
      let refusal: unknown = null;
      try {
        lockStateDir(dir).release();
      } catch (err) {
        refusal = err;
      }
      expect(refusal).toBeInstanceOf(StateDirLockedError);
      expect((refusal as StateDirLockedError).holderPid).toBe(holder.pid);
    } finally {
      holder.kill('SIGKILL');
      await gone;
    }
    const lock = lockStateDir(dir);
    lock.release();
  });

  it('can be taken again after release', () => {
    const dir = tmp();
    lockStateDir(dir).release();
    expect(() => lockStateDir(dir).release()).not.toThrow();
  });
});
