// The MCP server acts only as a client of the daemon. Before it serves anything it asks the
// daemon who it is (GET /v1/me) and refuses to run as an operator: whatever a model asks, it
// then passes the same gate, policy, allowTo and audit as any other client.
import type { z } from 'zod';
import type { Me as MeSchema } from '../control/api-schema/daemon.js';
import type { DaemonPort } from './daemon-port.js';

/** The client the daemon recognised from the token. */
export interface ClientIdentity {
  name: string;
  accounts: string[];
  may: string[];
}

/** The server must not start; the message is for the person who configured it. */
export class StartRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartRefused';
  }
}

type Me = z.output<typeof MeSchema>;

/** The advice when there is no token: the one thing that makes the server a client. */
export const NO_TOKEN_ADVICE =
  'set WA_SUPERVISOR_TOKEN to the token of a client listed in the daemon\'s config (clients[].tokenSha256; `wa-supervisor clients new-token` makes one) and point WA_SUPERVISOR_SOCKET at the client socket';

/**
 * Asks the daemon who the caller is; resolves with the client, or throws StartRefused when the
 * daemon answers operator or another client than `expected`.
 */
export async function requireClient(daemon: DaemonPort, expected: string | undefined): Promise<ClientIdentity> {
  const { body: me } = await daemon.request<Me>('GET', '/v1/me');
  if (me.role !== 'client') {
    throw new StartRefused(`the daemon sees this caller as an operator; the MCP server runs only as a client, never with operator powers: ${NO_TOKEN_ADVICE}`);
  }
  if (expected !== undefined && me.name !== expected) {
    throw new StartRefused(`the token belongs to client "${me.name}", not "${expected}" (--client); use that client's token or fix --client`);
  }
  return { name: me.name, accounts: [...me.accounts], may: [...me.may] };
}
