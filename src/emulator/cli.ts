/**
 * `wa-supervisor emulator`: runs the emulator standalone. Prints exactly one JSON line
 * `{"url","control","rootPublicKey","preload"}` on stdout once listening, logs to stderr only,
 * and runs until SIGINT or SIGTERM.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { DEFAULT_LATENCY_MS, MAX_LATENCY_MS } from './delay-line.js';

const USAGE = `Usage: wa-supervisor emulator [options]

Runs a WhatsApp server emulator on loopback for tests, with a JSON control API.
Prints one JSON line {"url","control","rootPublicKey","preload"} once listening.

Options:
  --port N          WebSocket port (default 0 = any free port)
  --host H          interface for the WebSocket server (default 127.0.0.1)
  --idle-ms T       close connections idle (no application stanza) for T ms (default: never)
  --latency-ms N    delay every frame the emulator sends by N ms, in order (default ${DEFAULT_LATENCY_MS}; 0 = none)
  --control-port N  control API port on 127.0.0.1 (default 0 = any free port)
  --log-level L     stderr log level: fatal|error|warn|info|debug|silent (default info)
  --help            show this help

Point a client at it: waWebSocketUrl = url; trust the root with
  WA_EMULATOR_ROOT=<rootPublicKey> node --import <preload> your-bot.js
For media, also trust the media test CA: WA_EMULATOR_MEDIA_CA=<file with the
"pem" of GET <control>/media/ca> (or NODE_EXTRA_CA_CERTS=<that file>).
`;

interface CliOptions {
  port: number;
  host: string;
  idleMs: number;
  latencyMs: number;
  controlPort: number;
  logLevel: string;
}

/** Absolute path of the compiled preload, also when this file runs from src/ under a loader. */
export function preloadPath(): string {
  const fromSource = import.meta.url.endsWith('.ts');
  return fileURLToPath(new URL(fromSource ? '../../dist/emulator/preload.js' : './preload.js', import.meta.url));
}

function integer(name: string, value: string | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) > max) throw new Error(`--${name}: expected an integer from 0 to ${max}, got "${value}"`);
  return Number(value);
}

function parse(args: string[]): CliOptions | 'help' {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'idle-ms': { type: 'string' },
      'latency-ms': { type: 'string' },
      'control-port': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  const logLevel = values['log-level'] ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new Error(`--log-level: unknown level "${logLevel}"`);
  }
  return {
    port: integer('port', values.port, 0, 65535),
    host: values.host ?? '127.0.0.1',
    idleMs: integer('idle-ms', values['idle-ms'], 0, 24 * 3600 * 1000),
    latencyMs: integer('latency-ms', values['latency-ms'], DEFAULT_LATENCY_MS, MAX_LATENCY_MS),
    controlPort: integer('control-port', values['control-port'], 0, 65535),
    logLevel,
  };
}

/**
 * libsignal reports session changes with console.info/warn; stdout must carry nothing but the
 * JSON line, so while the emulator runs every console method writes to stderr.
 */
function consoleToStderr(): () => void {
  const saved = { log: console.log, info: console.info, warn: console.warn, debug: console.debug, trace: console.trace };
  const toStderr = (...args: unknown[]): void => console.error(...args);
  Object.assign(console, { log: toStderr, info: toStderr, warn: toStderr, debug: toStderr, trace: toStderr });
  return () => Object.assign(console, saved);
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** Runs the emulator command; resolves with the exit code (0 after SIGINT/SIGTERM, 2 on bad usage). */
export async function runEmulatorCommand(args: string[]): Promise<number> {
  let options: CliOptions | 'help';
  try {
    options = parse(args);
  } catch (error) {
    process.stderr.write(`wa-supervisor emulator: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const restoreConsole = consoleToStderr();
  const logger = pino({ level: options.logLevel, base: { component: 'emulator' } }, pino.destination({ fd: 2, sync: true }));
  try {
    // loaded here, not at the top, so --help and usage errors do not pay for loading Baileys
    const { createEmulator } = await import('./emulator.js');
    const emulator = await createEmulator({
      port: options.port,
      host: options.host,
      idleMs: options.idleMs,
      latencyMs: options.latencyMs,
      logger,
    });
    const control = await emulator.startControlApi(options.controlPort);
    const stopped = untilSignal();
    const line = { url: emulator.url, control, rootPublicKey: emulator.rootPublicKey.toString('hex'), preload: preloadPath() };
    process.stdout.write(`${JSON.stringify(line)}\n`);
    await stopped;
    await emulator.close();
    return 0;
  } catch (error) {
    process.stderr.write(`wa-supervisor emulator: ${(error as Error).message}\n`);
    return 1;
  } finally {
    restoreConsole();
  }
}
