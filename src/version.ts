import { readFileSync } from 'node:fs';

/** The package version, read once from package.json (one level above both src/ and dist/). */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** The response header that carries the daemon's version on every control-socket reply. */
export const VERSION_HEADER = 'x-wa-supervisor-version';
