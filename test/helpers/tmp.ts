import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temporary directory (short, so socket paths inside it fit) and its removal. */
export function makeTmpDir(prefix = 'wa-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes a config object as JSON into dir and returns its path. */
export function writeConfig(dir: string, config: unknown, name = 'config.json'): string {
  const path = join(dir, name);
  writeFileSync(path, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  return path;
}

/**
 * Registers an afterEach that removes every directory made through the returned function, for
 * test files that make several temporary directories.
 */
export function tmpDirs(afterEach: (fn: () => void) => void, prefix = 'wa-'): () => string {
  const cleanups: Array<() => void> = [];
  afterEach(() => cleanups.splice(0).forEach((c) => c()));
  return () => {
    const t = makeTmpDir(prefix);
    cleanups.push(t.cleanup);
    return t.dir;
  };
}
