import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The package's own export, as the examples import it: the source, so tests need no build of it.
  resolve: { alias: { 'wa-supervisor/client': fileURLToPath(new URL('./src/client/index.ts', import.meta.url)) } },
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup/emulator-root.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Two files at a time on a 2-core machine: integration tests wait mostly on child processes
    // and the emulator, so this halves the wall time (one worker is vitest's default there).
    maxWorkers: 2,
    reporters: ['default'],
  },
});
