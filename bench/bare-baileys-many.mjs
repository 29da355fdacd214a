// The memory baseline for bench/accounts: N bare Baileys sockets in one process (default settings,
// multi-file auth in a temp dir), each paired through the emulator. Reads commands on stdin:
// "add <phone>" pairs one more socket and answers {"type":"open","count":N} when it is open.
// Usage: node --import <emulator preload> bench/bare-baileys-many.mjs WS_URL AUTH_DIR
import makeWASocket, { useMultiFileAuthState } from '@whiskeysockets/baileys';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { pino } from 'pino';

const [url, authRoot] = process.argv.slice(2);
const socks = [];
const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function add(phone) {
  const { state, saveCreds } = await useMultiFileAuthState(join(authRoot, phone));
  const connect = () => {
    const sock = makeWASocket({ auth: state, waWebSocketUrl: url, logger: pino({ level: 'silent' }) });
    sock.ev.on('creds.update', saveCreds);
    sock.ev.on('connection.update', ({ connection, qr, lastDisconnect }) => {
      if (qr) say({ type: 'qr', phone, qr });
      if (connection === 'open') {
        socks.push(sock);
        say({ type: 'open', phone, count: socks.length });
      }
      if (connection === 'close' && lastDisconnect?.error?.output?.statusCode === 515) connect();
    });
  };
  connect();
}
createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, phone] = line.trim().split(' ');
  if (cmd === 'add') void add(phone);
});
say({ type: 'ready' });
