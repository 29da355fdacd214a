/** Process entry for the standalone and child-process emulator: `node dist/emulator/main.js [options]`. */
import { runEmulatorCommand } from './cli.js';

process.exitCode = await runEmulatorCommand(process.argv.slice(2));
