// Command-line parsing on node:util's parseArgs, strict: an unknown flag is a usage error.
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A bad command line; main() prints it with a pointer to --help and exits 64. */
export class UsageError extends Error {
  readonly command: string;
  constructor(command: string, message: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

/** Flags every command accepts. */
export const COMMON_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  config: { type: 'string' },
  socket: { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

/** Parses args for a command, turning parseArgs' errors into UsageError. */
export function parseCommandArgs<O extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  args: string[],
  options: O,
  allowPositionals = false,
): ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: boolean }>> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (err) {
    throw new UsageError(command, (err as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
}
