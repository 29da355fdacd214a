// The `wa-supervisor` command: dispatch to one module per command, and the one place that turns
// errors into messages and exit codes.
import { ApiError, DaemonUnreachableError } from '../control/client.js';
import { VERSION } from '../version.js';
import { UsageError } from './args.js';
import { accountOpCommand, accountsCommand } from './commands/accounts.js';
import { configCommand } from './commands/config.js';
import { alertsCommand } from './commands/alerts.js';
import { auditCommand, messagesCommand } from './commands/messages.js';
import { inboxCommand } from './commands/inbox.js';
import { consumersCommand } from './commands/consumers.js';
import { readCommand } from './commands/read.js';
import { clientsCommand } from './commands/clients.js';
import { pairCommand } from './commands/pair.js';
import { sendCommand, targetCommand } from './commands/send.js';
import { serviceCommand } from './commands/service.js';
import { statusCommand } from './commands/status.js';
import { EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';

/** Top-level help. */
export const MAIN_HELP = `wa-supervisor ${VERSION}: one daemon that owns every WhatsApp socket on this host.

Usage: wa-supervisor <command> [options]

Commands:
  run            run the daemon in the foreground
  status         show the daemon and its accounts (--json for scripts)
  config check   validate the config file (exit 78 on errors)
  config show    print the effective config and the file it came from
  send           send a text, a file (--image, --document, ...), a location or a contact card
  reply, react, edit, delete
                 a message pointing at another of the chat (quote, reaction, edit, delete)
  inbox          read inbound messages by cursor (--follow streams new ones)
  consumers      named inbox readers with a kept cursor: list (lag), add, remove
  read           mark a chat's messages read (read receipts pass the send policy)
  clients        new-token: make a client token and the hash the config lists
  mcp            serve the Model Context Protocol on stdio for an agent (as a client only)
  emulator       run the WhatsApp server emulator on loopback (offline testing)
  version        print the version

Run "wa-supervisor <command> --help" for a command's options.
Every client command takes --socket PATH (else $WA_SUPERVISOR_SOCKET, else the default).
On the client socket, set WA_SUPERVISOR_TOKEN to the client's token.`;

type Command = (args: string[], io: CliIo) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  run: async (args, io) => {
    // Loaded on demand: the daemon (Baileys, SQLite, PostgreSQL, metrics) takes longer to load
    // than any client command takes to run.
    const { runCommand } = await import('./commands/run.js');
    return runCommand(args, io);
  },
  status: statusCommand,
  config: configCommand,
  accounts: accountsCommand,
  pair: pairCommand,
  reconnect: accountOpCommand('reconnect'),
  logout: accountOpCommand('logout'),
  send: sendCommand,
  reply: targetCommand('reply'),
  react: targetCommand('react'),
  edit: targetCommand('edit'),
  delete: targetCommand('delete'),
  messages: messagesCommand,
  inbox: inboxCommand,
  consumers: consumersCommand,
  read: readCommand,
  clients: clientsCommand,
  mcp: async (args, io) => {
    // Loaded on demand like the emulator: the MCP SDK would slow every other command's start.
    const { mcpCommand } = await import('./commands/mcp.js');
    return mcpCommand(args, io);
  },
  audit: auditCommand,
  alerts: alertsCommand,
  service: serviceCommand,
  emulator: async (args) => {
    // Loaded on demand: only this command needs the emulator (and Baileys' codecs).
    const { runEmulatorCommand } = await import('../emulator/cli.js');
    return runEmulatorCommand(args);
  },
  version: async (_args, io) => {
    io.stdout.write(`${VERSION}\n`);
    return EXIT.OK;
  },
};

/** Runs the CLI with argv (without node and script); resolves with the exit code. */
export async function main(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(`${MAIN_HELP}\n`);
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (name === '--version' || name === '-v') return COMMANDS.version!(rest, io);
  const command = COMMANDS[name];
  if (!command) {
    io.stderr.write(`wa-supervisor: unknown command "${name}"\nRun "wa-supervisor --help" for the list of commands.\n`);
    return EXIT.USAGE;
  }
  try {
    return await command(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`wa-supervisor ${err.command}: ${err.message}\nRun "wa-supervisor ${err.command.split(' ')[0]} --help" for usage.\n`);
      return EXIT.USAGE;
    }
    if (err instanceof DaemonUnreachableError) {
      io.stderr.write(`wa-supervisor: ${err.message}\n`);
      return EXIT.UNAVAILABLE;
    }
    if (err instanceof ApiError) {
      io.stderr.write(`wa-supervisor: the daemon answered ${err.status} ${err.code}: ${err.message}\n`);
      return err.status === 401 || err.status === 403 ? EXIT.NOPERM : EXIT.FAILURE;
    }
    throw err;
  }
}
