// Fixtures for control-server tests that run the route table without a daemon.
import type { AccountSummary, DaemonInfo } from '../../src/control/wire.js';
import { VERSION } from '../../src/version.js';

/** What GET /v1/status says about a daemon that is not there. */
export const DAEMON_INFO: DaemonInfo = {
  version: VERSION,
  pid: 1,
  node: process.version,
  startedAt: '2026-11-21T00:00:00.000Z',
  uptimeMs: 5,
  configPath: '/c.json',
  stateDir: '/s',
  socket: '/s/x.sock',
  previousRunCrashed: false,
};

/** An account as GET /v1/accounts shows one that never connected; fields overridable. */
export function accountSummary(o: Partial<AccountSummary> = {}): AccountSummary {
  return {
    id: 'main',
    state: 'stopped',
    since: '2026-11-21T00:00:00.000Z',
    jid: null,
    name: null,
    connectedSince: null,
    lastClose: null,
    reconnect: { failures: 0, nextRetryAt: null },
    keepalive: null,
    lastInboundAt: null,
    retryReceipts: { received: 0, lastAt: null },
    authSince: null,
    degraded: null,
    closesByCode: {},
    ...o,
  };
}
