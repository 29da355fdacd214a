// `wa-supervisor clients new-token`: a fresh client token and the SHA-256 the config lists for it.
import { randomBytes } from 'node:crypto';
import { tokenSha256 } from '../../control/roles.js';
import { COMMON_OPTIONS, UsageError, parseCommandArgs } from '../args.js';
import { EXIT } from '../exit-codes.js';
import { printJson, type CliIo } from '../io.js';

/** Help text for `clients`. */
export const CLIENTS_HELP = `Usage: wa-supervisor clients new-token [--json]

Prints a new random token (256 bits) and its SHA-256. Put the hash in the config's clients
(\`{"name", "tokenSha256", "accounts", "may"?}\`) and give the token to the bot or agent, which
sends it on the client socket (the CLI reads WA_SUPERVISOR_TOKEN). The daemon never stores the
token itself; this command does not talk to the daemon.`;

/** Dispatches the clients subcommands. */
export async function clientsCommand(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.stdout.write(`${CLIENTS_HELP}\n`);
    return sub === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const { values, positionals } = parseCommandArgs(`clients ${sub}`, rest, { ...COMMON_OPTIONS }, true);
  if (values.help) {
    io.stdout.write(`${CLIENTS_HELP}\n`);
    return EXIT.OK;
  }
  if (sub !== 'new-token') throw new UsageError('clients', `unknown subcommand "${sub}" (use new-token)`);
  if (positionals.length) throw new UsageError('clients new-token', 'takes no arguments');
  const token = `wst_${randomBytes(32).toString('base64url')}`;
  const hash = tokenSha256(token);
  if (values.json) printJson(io, { token, tokenSha256: hash });
  else io.stdout.write(`token:       ${token}\ntokenSha256: ${hash}\n`);
  return EXIT.OK;
}
