/** Running the emulator's TypeScript sources (or small scripts) in child Node processes. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Absolute path of the repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Node flags that let a child import the emulator's .ts sources (see ts-hooks.mjs). */
export const TS_EXEC_ARGV = ['--import', fileURLToPath(new URL('./ts-loader.mjs', import.meta.url))];

/** The emulator's own source path for `file` (e.g. `preload.ts`). */
export function emulatorSource(file: string): string {
  return fileURLToPath(new URL(`../../../src/emulator/${file}`, import.meta.url));
}

/** What a finished child printed and how it exited. */
export interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node <args>` to completion (killed after `timeoutMs`). */
export function runNode(args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 20_000): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child timed out; stderr:\n${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
