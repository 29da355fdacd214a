// Fixtures for control-server tests that run the route table without a daemon.
import type { DaemonInfo } from '../../src/control/wire.js';
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
