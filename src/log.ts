// Structured logging. JSON lines on stdout for services and log shippers; pretty when a person
// is watching a terminal. Secrets are redacted by path so they never reach a log file.
import { pino, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

/** The logger type used across the daemon. */
export type Log = Logger;

/** Paths pino blanks out wherever they appear in a log object. */
export const REDACT_PATHS = [
  '*.secret',
  '*.token',
  '*.password',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'config.alerts.sinks[*].secret',
  'creds',
  '*.creds',
  'keys',
];

/** Creates the daemon's logger writing to stdout; pretty output when stdout is a terminal. */
export function createLogger(opts: { level: LevelWithSilent; pretty?: boolean; destination?: NodeJS.WritableStream }): Log {
  const base = {
    level: opts.level,
    base: { pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const wantPretty = opts.pretty ?? (opts.destination === undefined && process.stdout.isTTY === true);
  if (wantPretty) {
    return pino(base, pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
  }
  return pino(base, opts.destination ?? pino.destination({ fd: 1, sync: true }));
}
