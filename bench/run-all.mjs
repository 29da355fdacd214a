// `npm run bench`: runs every benchmark in bench/ in turn; each writes bench/results/<name>.json
// and prints a JSON line and a readable line.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const benches = ['recovery.mjs', 'accounts.mjs', 'enqueue.mjs', 'store-enqueue.mjs', 'failover.mjs', 'replay.mjs', 'churn.mjs', 'inbound.mjs', 'media.mjs', 'cli-start.mjs'];
let failed = 0;
for (const b of benches) {
  process.stderr.write(`\n== ${b}\n`);
  const r = spawnSync(process.execPath, [fileURLToPath(new URL(b, import.meta.url)), ...process.argv.slice(2)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
spawnSync(process.execPath, [fileURLToPath(new URL('report.mjs', import.meta.url))], { stdio: 'inherit' });
process.exitCode = failed ? 1 : 0;
