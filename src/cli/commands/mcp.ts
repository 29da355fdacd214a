// `wa-supervisor mcp`: the MCP server on stdin/stdout, for agents. It runs only as a client: no
// token, or a token the daemon does not take for a client, and it does not start.
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { ApiError, ControlClient } from '../../control/client.js';
import { NO_TOKEN_ADVICE, StartRefused, requireClient, type ClientIdentity } from '../../mcp/client-identity.js';
import { CallTimeoutError, controlPort, withDeadline } from '../../mcp/daemon-port.js';
import { buildMcpServer } from '../../mcp/server.js';
import { VERSION } from '../../version.js';
import { COMMON_OPTIONS, parseCommandArgs } from '../args.js';
import { EXIT } from '../exit-codes.js';
import type { CliIo } from '../io.js';
import { TOKEN_ENV, resolveCliTarget } from '../target.js';

/** Help text for `mcp`. */
export const MCP_HELP = `Usage: wa-supervisor mcp [--client NAME] [--consumer NAME] [--socket PATH] [--config FILE]

Serves the Model Context Protocol on stdin and stdout, for an agent (a coding assistant, a chat
host) that starts it as a tool server. Its tools: send_message, read_inbox, acknowledge,
message_status and list_accounts; nothing an operator does (approve, retry, accounts, status).

It runs only as a client: it needs $${TOKEN_ENV} (a client's token, on the client socket),
asks the daemon who that token is before it serves anything, and refuses to start as an
operator. Every call is then the client's own request: the same gate, send policy, allowTo and
audit. Logs go to stderr; stdout carries the protocol only. See docs/mcp.md.

--client NAME    refuse to start unless the token is client NAME's (it is also sent as X-WA-Client)
--consumer NAME  the stream consumer read_inbox and acknowledge use when a call names none`;

/** Each daemon call, the first one included, gets this long before it is a timeout. */
const CALL_TIMEOUT_MS = 15_000;

/** Serves MCP until stdin ends. */
export async function mcpCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs('mcp', args, {
    help: COMMON_OPTIONS.help,
    config: COMMON_OPTIONS.config,
    socket: COMMON_OPTIONS.socket,
    client: { type: 'string' },
    consumer: { type: 'string' },
  });
  if (values.help) {
    io.stdout.write(`${MCP_HELP}\n`);
    return EXIT.OK;
  }
  const refuse = (why: string) => {
    io.stderr.write(`wa-supervisor mcp: ${why}\n`);
    return EXIT.NOPERM;
  };
  const token = process.env[TOKEN_ENV]?.trim();
  if (!token) return refuse(`no client token, and the MCP server never runs as an operator: ${NO_TOKEN_ADVICE}`);

  const target = resolveCliTarget(values);
  const connect = (clientName: string) =>
    new ControlClient({
      socket: target.socket,
      clientName,
      token,
      retryRefusedMs: 2000,
      onVersionMismatch: (v) => io.stderr.write(`warning: this wa-supervisor is version ${VERSION} but the daemon runs ${v}; restart the daemon after upgrading\n`),
    });

  let identity: ClientIdentity;
  try {
    identity = await requireClient(withDeadline(controlPort(connect(values.client ?? 'wa-supervisor-mcp')), CALL_TIMEOUT_MS), values.client);
  } catch (err) {
    if (err instanceof StartRefused) return refuse(err.message);
    if (err instanceof ApiError && err.status === 401) return refuse(`the daemon refused the token: ${err.message}`);
    if (err instanceof CallTimeoutError) {
      io.stderr.write(`wa-supervisor mcp: the daemon did not answer within ${CALL_TIMEOUT_MS / 1000} s\n`);
      return EXIT.UNAVAILABLE;
    }
    throw err; // unreachable daemon and the rest: main() words them
  }

  const server = buildMcpServer({
    daemon: controlPort(connect(identity.name)),
    identity,
    defaultConsumer: values.consumer,
    timeoutMs: CALL_TIMEOUT_MS,
    log: (line) => io.stderr.write(`${line}\n`),
  });
  // The host ends the session by closing our stdin (or by closing the transport itself).
  const ended = new Promise<void>((resolve) => {
    process.stdin.once('end', resolve);
    process.stdin.once('close', resolve);
    server.server.onclose = () => resolve();
  });
  await server.connect(new StdioServerTransport(process.stdin, process.stdout));
  io.stderr.write(`wa-supervisor mcp: serving client "${identity.name}" (accounts: ${identity.accounts.join(', ')}; may: ${identity.may.join(', ')}) on stdio\n`);
  await ended;
  await server.close();
  return EXIT.OK;
}
