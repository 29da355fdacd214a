/**
 * Runs the emulator in a child process, for tests whose timing must not share an event loop
 * with Baileys (the first login's ~812 prekeys block the loop for ~150 ms). The child prints its
 * JSON line; this helper parses it and hands back a control API client.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { EmulatorControlClient } from './control-client.js';

/** What the child printed once it was listening, plus handles to drive and stop it. */
export interface EmulatorChild {
  url: string;
  control: string;
  rootPublicKey: string;
  preload: string;
  pid: number;
  client: EmulatorControlClient;
  /** Everything the child wrote to stderr so far (its log). */
  stderr(): string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** How to start the child. */
export interface EmulatorChildOptions {
  /** CLI arguments (e.g. `['--idle-ms', '3000']`); `--port 0` is the default anyway. */
  args?: string[];
  /** Latency of every frame the emulator sends (`--latency-ms`); absent = the emulator's default. */
  latencyMs?: number;
  /** Node flags, e.g. a TypeScript loader when running from source. */
  execArgv?: string[];
  /** Entry module (default: main.js next to this file, or main.ts when running from source). */
  entry?: string;
  env?: NodeJS.ProcessEnv;
  /** How long to wait for the JSON line (default 15 s). */
  startTimeoutMs?: number;
}

/** Starts an emulator child process; resolves once it is listening. */
export function startEmulatorChild(options: EmulatorChildOptions = {}): Promise<EmulatorChild> {
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = options.entry ?? fileURLToPath(new URL(fromSource ? './main.ts' : './main.js', import.meta.url));
  if (entry.endsWith('.ts') && !(options.execArgv ?? []).some((a) => a.includes('loader') || a.startsWith('--import'))) {
    return Promise.reject(new Error(`running ${entry} needs a TypeScript loader in execArgv (or build and use dist/)`));
  }
  const args = [...(options.args ?? []), ...(options.latencyMs === undefined ? [] : ['--latency-ms', String(options.latencyMs)])];
  const child = spawn(process.execPath, [...(options.execArgv ?? []), entry, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`emulator child printed nothing within ${options.startTimeoutMs ?? 15_000} ms; stderr:\n${stderr}`));
    }, options.startTimeoutMs ?? 15_000);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`emulator child exited with ${code} before listening; stderr:\n${stderr}`));
    });
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      try {
        const info = JSON.parse(line) as { url: string; control: string; rootPublicKey: string; preload: string };
        resolve({
          ...info,
          pid: child.pid!,
          client: new EmulatorControlClient(info.control),
          stderr: () => stderr,
          stop: () => stopChild(child, exited),
        });
      } catch {
        child.kill('SIGKILL');
        reject(new Error(`emulator child printed a non-JSON line: ${line}`));
      }
    });
  });
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<number | null> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  return exited;
}
