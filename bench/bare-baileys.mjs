// The baseline the recovery benchmark compares against: one Baileys socket with its default
// settings and the reconnect-on-close pattern Baileys' README teaches (reconnect whenever the
// close is not a logout). Prints JSON lines: {type:"qr"}, {type:"open"}, {type:"close",code}.
// Usage: node --import <emulator preload> bench/bare-baileys.mjs WS_URL AUTH_DIR
import makeWASocket, { DisconnectReason, useMultiFileAuthState } from '@whiskeysockets/baileys';
import { pino } from 'pino';

const [url, authDir] = process.argv.slice(2);
const say = (o) => process.stdout.write(`${JSON.stringify({ ...o, at: Date.now() })}\n`);

async function connect() {
  const { state, saveCreds } = await useMultiFileAuthState(authDir);
  const sock = makeWASocket({ auth: state, waWebSocketUrl: url, logger: pino({ level: 'silent' }) });
  sock.ev.on('creds.update', saveCreds);
  sock.ev.on('connection.update', ({ connection, lastDisconnect, qr }) => {
    if (qr) say({ type: 'qr', qr });
    if (connection === 'open') say({ type: 'open' });
    if (connection === 'close') {
      const code = lastDisconnect?.error?.output?.statusCode;
      say({ type: 'close', code });
      if (code !== DisconnectReason.loggedOut) void connect();
    }
  });
}
await connect();
