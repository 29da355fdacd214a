// A minimal "user's bot" for the preload test: real Baileys in its own process, in-memory
// creds, pointed at EMULATOR_URL. Prints one JSON object per line: {qr}, then {open, root, me}.
import makeWASocket, { WA_CERT_DETAILS, initAuthCreds } from '@whiskeysockets/baileys';
import { pino } from 'pino';

const creds = initAuthCreds();
const store = {};
const keys = {
  get: async (type, ids) => Object.fromEntries(ids.filter((id) => store[type]?.[id] !== undefined).map((id) => [id, store[type][id]])),
  set: async (data) => {
    for (const [type, entries] of Object.entries(data)) {
      store[type] ??= {};
      for (const [id, value] of Object.entries(entries)) {
        if (value == null) delete store[type][id];
        else store[type][id] = value;
      }
    }
  },
};
const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

function connect() {
  const sock = makeWASocket({ waWebSocketUrl: process.env.EMULATOR_URL, auth: { creds, keys }, logger: pino({ level: 'silent' }) });
  sock.ev.on('connection.update', (update) => {
    if (update.qr) print({ qr: update.qr });
    if (update.connection === 'open') {
      print({ open: true, root: Buffer.from(WA_CERT_DETAILS.PUBLIC_KEY).toString('hex'), me: sock.user?.id });
      sock.end(undefined);
      process.exit(0);
    }
    if (update.connection === 'close') {
      const code = update.lastDisconnect?.error?.output?.statusCode;
      if (code === 515) connect();
      else {
        print({ closed: code });
        process.exit(1);
      }
    }
  });
}
connect();
