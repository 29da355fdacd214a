// Runs the real CLI binary as a child process, with an environment that cannot see the
// developer's own config, socket or runtime directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The CLI entry point, as users run it. */
export const BIN = fileURLToPath(new URL('../../bin/wa-supervisor.js', import.meta.url));

/** An environment isolated under home: no inherited WA_SUPERVISOR_* or XDG_* variables. */
export function isolatedEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('WA_SUPERVISOR_') || k.startsWith('XDG_') || k === 'NOTIFY_SOCKET') continue;
    if (k === 'STATE_DIRECTORY' || k === 'RUNTIME_DIRECTORY') continue;
    env[k] = v;
  }
  return { ...env, HOME: home, XDG_CONFIG_HOME: `${home}/.config`, ...extra };
}

/** Result of a finished CLI run. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `wa-supervisor ...args` to completion. */
export function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** A daemon started with `wa-supervisor run`, with its output collected. */
export interface DaemonProcess {
  child: ChildProcess;
  pid: number;
  output: () => string;
  /** Resolves when a stdout log line satisfies the predicate. */
  waitForLog: (pred: (line: Record<string, unknown>) => boolean, timeoutMs?: number) => Promise<Record<string, unknown>>;
  /** Resolves with the exit code and signal once the process has ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `wa-supervisor run ...args`; resolves once it logs that it is ready (or rejects if it exits first). */
export async function startDaemon(
  args: string[],
  env: NodeJS.ProcessEnv,
  opts: { waitReady?: boolean; nodeArgs?: string[] } = {},
): Promise<DaemonProcess> {
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), BIN, 'run', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let pending = '';
  const lines: Array<Record<string, unknown>> = [];
  const waiters = new Set<{ pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }>();
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    pending += d;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const text = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        continue;
      }
      lines.push(line);
      for (const w of waiters) {
        if (w.pred(line)) {
          waiters.delete(w);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const waitForLog = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 10_000) => {
    const found = lines.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const w = { pred, resolve: (l: Record<string, unknown>) => (clearTimeout(t), resolve(l)) };
      const t = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`timed out waiting for a log line; output so far:\n${out}`));
      }, timeoutMs);
      waiters.add(w);
      void exited.then(({ code, signal }) => {
        if (!waiters.has(w)) return;
        waiters.delete(w);
        clearTimeout(t);
        reject(new Error(`daemon exited (code ${code}, signal ${signal}) before the awaited log line; output:\n${out}`));
      });
    });
  };
  const proc: DaemonProcess = { child, pid: child.pid!, output: () => out, waitForLog, exited };
  if (opts.waitReady !== false) await waitForLog((l) => l.msg === 'wa-supervisor daemon ready');
  return proc;
}
